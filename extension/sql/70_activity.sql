-- ---------------------------------------------------------------------------------
-- Activity history (the launcher's sampler) and pool-size advice.
-- See docs/pool-advice.md for the formula.
-- ---------------------------------------------------------------------------------

CREATE FUNCTION usher.activity_history_internal(
    OUT sampled_at timestamptz,
    OUT service text,
    OUT connected integer,
    OUT active integer,
    OUT queued integer,
    OUT statements bigint,
    OUT busy_seconds double precision)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'usher_activity_history';
CREATE VIEW usher.activity_history AS SELECT * FROM usher.activity_history_internal();
COMMENT ON VIEW usher.activity_history IS
  'Per sample (every usher.sample_interval) and service: sessions connected, statements active and queued at the gate, statements admitted and busy seconds since the previous sample';

-- Over the whole window the ring buffer holds (usher.history_samples samples).
-- Little's law: mean concurrency L = rate x mean busy time = busy seconds / window seconds.
CREATE VIEW usher.activity_summary AS
SELECT h.service,
       min(h.sampled_at) AS window_start,
       max(h.sampled_at) AS window_end,
       count(*) AS samples,
       max(h.connected) AS peak_connected,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY h.connected) AS p95_connected,
       max(h.active) AS peak_active,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY h.active) AS p95_active,
       max(h.queued) AS peak_queued,
       coalesce(sum(h.statements), 0)::bigint AS statements,
       CASE WHEN max(h.sampled_at) > min(h.sampled_at)
            THEN coalesce(sum(h.statements), 0)::double precision
                 / extract(epoch FROM max(h.sampled_at) - min(h.sampled_at))::double precision
       END AS statements_per_second,
       CASE WHEN sum(h.statements) > 0::numeric
            THEN sum(h.busy_seconds) / sum(h.statements)::double precision END AS mean_busy_seconds,
       CASE WHEN max(h.sampled_at) > min(h.sampled_at)
            THEN coalesce(sum(h.busy_seconds), 0)
                 / extract(epoch FROM max(h.sampled_at) - min(h.sampled_at))::double precision
       END AS mean_active
  FROM usher.activity_history h
 GROUP BY h.service;
COMMENT ON VIEW usher.activity_summary IS
  'Per service over the sampled window: peak and p95 of connected and active, statement rate, mean busy time and mean concurrency (Little''s law)';

CREATE FUNCTION usher.cpu_cores_internal(OUT cores integer, OUT source text)
LANGUAGE C STRICT VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'usher_cpu_cores';

-- The formula is documented step by step in docs/pool-advice.md; keep the two in step.
CREATE FUNCTION usher.pool_advice(instances jsonb DEFAULT NULL)
RETURNS TABLE (service text, client_instances integer, max_pool_size integer, min_idle integer,
               basis text, rationale text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
  cores integer;
  cores_source text;
  max_conn integer := current_setting('max_connections')::integer;
  su_reserved integer := current_setting('superuser_reserved_connections')::integer;
  pg_reserved integer := coalesce(nullif(current_setting('reserved_connections', true), '')::integer, 0);
  usable integer;
  target integer;
  total_weight numeric;
  min_samples constant integer := 10;
  key text;
  value jsonb;
  known text;
  s record;
  h record;
  n integer;
  w numeric;
  others_reserved integer;
  available integer;
  share integer;
  little numeric;
  demand integer;
  wanted integer;
  cap integer;
  cap_text text;
  per_instance integer;
  idle integer;
  steady numeric;
  why text;
BEGIN
  SELECT c.cores, c.source INTO cores, cores_source FROM usher.cpu_cores_internal() c;  -- 55000 unless preloaded

  IF instances IS NOT NULL THEN
    IF jsonb_typeof(instances) <> 'object' THEN
      RAISE EXCEPTION 'instances must be a JSON object of service names and client process counts, not a JSON %',
        jsonb_typeof(instances)
        USING ERRCODE = '22023', HINT = 'For example: usher.pool_advice(''{"orders": 12, "billing": 3}'').';
    END IF;
    SELECT string_agg(quote_literal(p.name), ', ' ORDER BY p.name) INTO known
      FROM usher.published_services p WHERE p.enabled;
    FOR key, value IN SELECT e.key, e.value FROM jsonb_each(instances) e LOOP
      IF jsonb_typeof(value) <> 'number' OR value::text::numeric <> trunc(value::text::numeric)
         OR value::text::numeric < 1 OR value::text::numeric > 100000 THEN
        RAISE EXCEPTION 'instances of service "%" must be a whole number between 1 and 100000, not %', key, value::text
          USING ERRCODE = '22023';
      END IF;
      IF NOT EXISTS (SELECT 1 FROM usher.published_services p WHERE p.name = key AND p.enabled) THEN
        RAISE EXCEPTION 'instances names service "%", which is not an enabled service in the published registry', key
          USING ERRCODE = '22023', HINT = format('Services: %s.', known);
      END IF;
    END LOOP;
  END IF;

  usable := max_conn - su_reserved - pg_reserved;
  target := 2 * cores;
  SELECT sum(1 + p.priority / 100.0) INTO total_weight FROM usher.published_services p WHERE p.enabled;

  FOR s IN SELECT p.name, p.max_connections, p.reserved_connections, p.max_active, p.priority
             FROM usher.published_services p WHERE p.enabled ORDER BY p.name LOOP
    n := coalesce((instances ->> s.name)::numeric::integer, 1);
    w := 1 + s.priority / 100.0;
    SELECT coalesce(sum(p.reserved_connections), 0) INTO others_reserved
      FROM usher.published_services p WHERE p.enabled AND p.name <> s.name;
    available := greatest(usable - others_reserved, 0);
    share := greatest(ceil(target * w / total_weight), 1)::integer;

    why := format('server: %s cores (%s), target 2 x %s = %s active statements; '
                  'usable connections %s = max_connections %s - %s reserved by the server; '
                  'other services reserve %s, so %s are available; '
                  'service: max_connections %s, max_active %s, priority %s (weight %s of %s), %s instance(s); ',
                  cores, cores_source, cores, target, usable, max_conn, su_reserved + pg_reserved,
                  others_reserved, available,
                  CASE WHEN s.max_connections > 0 THEN s.max_connections::text ELSE 'unlimited' END,
                  CASE WHEN s.max_active > 0 THEN s.max_active::text ELSE 'unlimited' END,
                  s.priority, round(w, 2), round(total_weight, 2), n);

    SELECT * INTO h FROM usher.activity_summary a WHERE a.service = s.name;
    IF h.samples >= min_samples AND (h.statements > 0 OR h.peak_active > 0) THEN
      basis := 'observed';
      little := coalesce(h.mean_active, 0)::numeric;
      steady := CASE WHEN h.statements > 0 THEN little ELSE h.p95_active END;
      demand := greatest(ceil(little), h.p95_active, 1)::integer;
      wanted := greatest(ceil(1.25 * demand), h.peak_active)::integer;
      why := why || format('history: %s samples over %s s, peak active %s, p95 active %s, peak queued %s, '
                           'rate %s/s x mean busy %s s = L %s (Little''s law); '
                           'demand D = max(ceil(L), p95 active, 1) = %s; wanted N = max(ceil(1.25 x D), peak active) = %s; ',
                           h.samples, round(extract(epoch FROM h.window_end - h.window_start)::numeric, 1),
                           h.peak_active, h.p95_active, h.peak_queued,
                           round(coalesce(h.statements_per_second, 0)::numeric, 2),
                           round(coalesce(h.mean_busy_seconds, 0)::numeric, 4), round(little, 2),
                           demand, wanted);
      IF demand > target THEN
        why := why || format('D exceeds 2 x cores (%s): statements mostly wait (I/O, locks, sleep); '
                             'a max_active near %s would protect the server; ', target, target);
      END IF;
    ELSE
      basis := 'default share';
      steady := NULL;
      demand := share;
      wanted := share;
      why := why || format('no usable history (%s samples, %s statements; needs %s samples with activity): '
                           'N = ceil(2 x cores x weight / total weight) = ceil(%s x %s / %s) = %s; ',
                           coalesce(h.samples, 0), coalesce(h.statements, 0), min_samples,
                           target, round(w, 2), round(total_weight, 2), share);
    END IF;

    cap := available;
    cap_text := format('available %s', available);
    IF s.max_connections > 0 AND s.max_connections < cap THEN
      cap := s.max_connections;
    END IF;
    IF s.max_connections > 0 THEN
      cap_text := cap_text || format(', max_connections %s', s.max_connections);
    END IF;
    IF s.max_active > 0 AND s.max_active < cap THEN
      cap := s.max_active;
    END IF;
    IF s.max_active > 0 THEN
      cap_text := cap_text || format(', max_active %s', s.max_active);
    END IF;
    per_instance := greatest(least(ceil(least(wanted, cap)::numeric / n), floor(cap::numeric / n)), 1)::integer;
    idle := least(per_instance,
                  CASE WHEN steady IS NULL THEN 1 ELSE greatest(ceil(steady / n), 1) END)::integer;
    why := why || format('cap C = min(%s) = %s; max pool per instance = max(1, min(ceil(min(N, C) / %s), floor(C / %s))) = %s; '
                         'min idle = %s',
                         cap_text, cap, n, n, per_instance,
                         CASE WHEN steady IS NULL THEN format('1 (no history) = %s', idle)
                              ELSE format('min(max pool, max(1, ceil(%s / %s))) = %s', round(steady, 2), n, idle) END);
    IF per_instance * n > cap THEN
      why := why || format('; note: %s instances x 1 exceed the cap %s: fewer instances, or a higher limit', n, cap);
    END IF;

    service := s.name;
    client_instances := n;
    max_pool_size := per_instance;
    min_idle := idle;
    rationale := why;
    RETURN NEXT;
  END LOOP;
END
$$;
COMMENT ON FUNCTION usher.pool_advice(jsonb) IS
  'Per service: recommended max pool size and min idle per client instance, with every input in the rationale (docs/pool-advice.md)';

GRANT SELECT ON usher.activity_history, usher.activity_summary TO pg_monitor;
GRANT EXECUTE ON FUNCTION usher.activity_history_internal(), usher.cpu_cores_internal(),
  usher.pool_advice(jsonb) TO pg_monitor;
