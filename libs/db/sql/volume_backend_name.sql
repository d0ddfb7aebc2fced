-- nova's volume_name_template: %s is the id; %x and %d the sequence number, zero-padded to a
-- width starting with 0.
-- The function as the database has it now: a change is a new migration carrying this text.
CREATE OR REPLACE FUNCTION volume_backend_name(p_template varchar, p_seq bigint, p_id uuid) RETURNS varchar
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  done varchar := '';
  rest varchar := p_template;
  m text[];
  piece varchar;
BEGIN
  LOOP
    m := regexp_match(rest, '^(.*?)%(0?[0-9]*)([xds])(.*)$');
    EXIT WHEN m IS NULL;
    piece := CASE m[3] WHEN 's' THEN p_id::text WHEN 'x' THEN to_hex(p_seq) ELSE p_seq::text END;
    IF m[2] LIKE '0%' AND length(piece) < m[2]::integer THEN
      piece := lpad(piece, m[2]::integer, '0');
    END IF;
    done := done || m[1] || piece;
    rest := m[4];
  END LOOP;
  RETURN done || rest;
END
$$;
