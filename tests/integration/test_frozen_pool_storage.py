"""A frozen pool is kept for its draw in ``frozen_pools``; on PostgreSQL its long texts (a province's pool is 37 MB
of ids) are compressed with LZ4, set up when the server starts (pglz took 1.1 s of a province-wide freeze)."""

import pytest
import sqlalchemy as sa

COLUMNS = ("ids", "strata", "weights", "off_site")


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_frozen_pools_long_texts_are_compressed_with_lz4(runtime) -> None:
    query = sa.text("SELECT attname, attcompression FROM pg_attribute WHERE attrelid = 'frozen_pools'::regclass "
                    "AND attname = ANY(:names)")
    with runtime.engine.connect() as conn:
        assert dict(conn.execute(query, {"names": list(COLUMNS)}).all()) == dict.fromkeys(COLUMNS, "l")
    runtime.target_draws.setup()  # again, as every process does when it starts: nothing to change
    with runtime.engine.connect() as conn:
        assert dict(conn.execute(query, {"names": list(COLUMNS)}).all()) == dict.fromkeys(COLUMNS, "l")
