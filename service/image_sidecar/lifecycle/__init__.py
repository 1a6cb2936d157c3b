"""How pictures end: retention and the cleanup, its schedule, purges, moving between stores.

- `deletion.py`: expired images deleted in bounded batches (what cleanup, purges and
  takedowns share);
- `cleanup.py`: the cleanup run (one replica at a time, by a lease) and the orphan sweep;
- `purge.py`: a game's or a player's pictures deleted now;
- `cron.py`: cron expressions, evaluated in UTC (cronsim);
- `scheduler.py`: the loop that fires the cleanup on IMAGE_CLEANUP_CRON;
- `store_migration.py`: every live file copied to the other store, verified, resumable.

May import: `db`, `storage`, `config`, `models`, `errors`, `batch`, `tasks`. `cron.py` imports
nothing of the package (`config` holds a CronSchedule). Callers record the metrics.
"""
