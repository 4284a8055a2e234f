-- How many times an export job has been claimed, by the worker or by a Web Connector session.
-- Each claim takes the next number, and every later write of that claim (the lease's renewal,
-- the outcomes, the retry, the close) names it: a worker whose lease ran out while it was
-- still busy (a stalled process, a slow disk, clocks apart) then writes nothing over the work
-- of the one that took the job over. attempts cannot serve: a rate-limited attempt gives its
-- count back, and a Web Connector session takes a running job again without counting one.
ALTER TABLE export_jobs ADD COLUMN claims BIGINT NOT NULL DEFAULT 0;
