-- convguard store schema, version 3: nothing for SQLite. PostgreSQL's version 3 adds the
-- work queue (src/store/schema/pg/003_work_queue.sql, docs/work-queue.md), which is for
-- a store several hosts share; the version is taken here too so that both kinds of store
-- keep the same version numbers.
SELECT 1;
