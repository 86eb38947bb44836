-- Idempotency keys are kept for 24 hours. The workers' sweep deletes the
-- expired ones in batches; SKIP LOCKED lets several workers run it at once.
CREATE FUNCTION nh_idempotency_expire(p_limit integer) RETURNS integer
LANGUAGE sql AS $$
    WITH gone AS (
        DELETE FROM idempotency_keys
         WHERE ctid IN (SELECT ctid FROM idempotency_keys
                         WHERE expires_at <= now()
                         LIMIT p_limit
                           FOR UPDATE SKIP LOCKED)
        RETURNING 1
    )
    SELECT count(*)::integer FROM gone
$$;
