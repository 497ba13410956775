-- Run by seqmig's backfill engine in keyset batches (throttled, resumable), with
-- SET LOCAL seqmig.backfill = 'on' so dual-write triggers do not echo the writes.
-- By hand, the same effect in one statement (long row locks on big tables):
UPDATE {{ table | ident }} SET {{ column | ident }} = {{ expr }} WHERE {{ pending }};
