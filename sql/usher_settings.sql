-- Every usher.* setting as the server defines it when pg_usher is preloaded: name, type,
-- default, unit, context, bounds and descriptions. All of them are defined from one
-- table (extension/settings.cpp) and described in docs/reference.md; a difference here
-- is a change of the extension's interface. (The default, not the value: the harness
-- sets usher.database.)
SELECT name, vartype, boot_val, unit, context, min_val, max_val, short_desc, extra_desc
  FROM pg_settings WHERE name LIKE 'usher.%' ORDER BY name;
