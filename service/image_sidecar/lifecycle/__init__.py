"""How pictures end, or last: retention and the cleanup, its schedule, purges, moving between
stores, the scrub, the audit.

- `deletion.py`: expired images deleted in bounded batches (what cleanup, purges and
  takedowns share);
- `cleanup.py`: the cleanup run (one replica at a time, by a lease) and the orphan sweep of
  the write journal's unsettled places;
- `lease.py`: the lease that lets one replica at a time run a batch job;
- `scrub.py`: every stored file checked, a slice a run, the whole store a cycle; renditions
  re-made, originals restored from a copy or taken out of service;
- `audit.py`: the paced, resumable walk of the whole store for files no row names;
- `purge.py`: a game's or a player's pictures deleted now;
- `cron.py`: cron expressions, evaluated in UTC (cronsim);
- `scheduler.py`: the loop that fires the cleanup on IMAGE_CLEANUP_CRON, the scrub on
  IMAGE_SCRUB_CRON and the audit on IMAGE_AUDIT_CRON;
- `store_migration.py`: every live file copied to the other store, verified, resumable.

May import: `db`, `storage`, `config`, `models`, `errors`, `batch`, `tasks`, and (the scrub)
`images.decoding`, `images.formats`, `images.renditions`. `cron.py` imports
nothing of the package (`config` holds a CronSchedule). Callers record the metrics.
"""
