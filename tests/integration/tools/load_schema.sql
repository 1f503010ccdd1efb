-- The tables and the application role of the load generators (usher_load,
-- usher_pool_load): tests/integration/load_1200.sh and bench/load/run.sh run it in a
-- fresh database, as a superuser, with or without pg_usher.
CREATE ROLE app LOGIN;
GRANT USAGE ON SCHEMA public TO app;
CREATE TABLE public.load_items(id int PRIMARY KEY, name text, stock int);
INSERT INTO public.load_items SELECT i, 'item ' || i, 1000000 FROM generate_series(1, 1000) i;
CREATE TABLE public.load_orders(id bigserial PRIMARY KEY, item int, amount numeric);
CREATE TABLE public.load_payments(id bigserial PRIMARY KEY, order_ref int, amount numeric);
CREATE TABLE public.load_notifications(id bigserial PRIMARY KEY, ref int);
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO app;
