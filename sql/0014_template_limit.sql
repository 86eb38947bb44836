-- The plan's max_templates: nh_template_create of 0008 with the limit.
-- Deleted templates do not count.

CREATE OR REPLACE FUNCTION nh_template_create(p_tenant_id uuid, p_id uuid,
    p_name text, p_channel text, p_subject text, p_body text, p_html text,
    p_variables text[],
    OUT status integer, OUT body text)
LANGUAGE plpgsql AS $$
DECLARE
    t templates;
    v template_versions;
    v_max integer;
    v_count integer;
BEGIN
    -- The tenant's row lock orders concurrent creates of one tenant, so
    -- together they stay within the limit.
    SELECT p.max_templates INTO v_max
      FROM tenants x JOIN plans p ON p.name = x.plan
     WHERE x.id = p_tenant_id
       FOR NO KEY UPDATE OF x;

    IF NOT FOUND THEN
        status := 401;
        body := nh_error('unauthorized', 'missing or invalid API key');
        RETURN;
    END IF;

    SELECT count(*) INTO v_count FROM templates x
     WHERE x.tenant_id = p_tenant_id AND x.deleted_at IS NULL;

    IF v_count >= v_max THEN
        status := 403;
        body := nh_error('forbidden',
            format('the plan allows at most %s templates; delete templates'
                   ' or change the plan', v_max),
            (SELECT json_build_array(row_to_json(d))
               FROM (SELECT 'templates' AS field, 'plan_limit' AS issue,
                            v_max AS max) d));
        RETURN;
    END IF;

    BEGIN
        INSERT INTO templates (id, tenant_id, name, channel)
        VALUES (p_id, p_tenant_id, p_name, p_channel)
        RETURNING * INTO t;
    EXCEPTION WHEN unique_violation THEN
        status := 409;
        body := nh_template_duplicate();
        RETURN;
    END;

    INSERT INTO template_versions (template_id, version, subject, body, html,
        variables)
    VALUES (t.id, 1, p_subject, p_body, p_html, p_variables)
    RETURNING * INTO v;

    status := 201;
    body := nh_template_json(t, v)::text;
END
$$;
