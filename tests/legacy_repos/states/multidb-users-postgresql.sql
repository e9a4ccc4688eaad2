BEGIN;

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL, 
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 5d0e7a3b9f14

CREATE TABLE account (
    id SERIAL NOT NULL, 
    login VARCHAR(64), 
    PRIMARY KEY (id)
);

INSERT INTO alembic_version (version_num) VALUES ('5d0e7a3b9f14') RETURNING alembic_version.version_num;

COMMIT;

