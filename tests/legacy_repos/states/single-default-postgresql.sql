BEGIN;

CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL, 
    CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

-- Running upgrade  -> 3f2a9c81d4e7

CREATE TABLE "user" (
    id SERIAL NOT NULL, 
    name VARCHAR(128), 
    PRIMARY KEY (id)
);

INSERT INTO alembic_version (version_num) VALUES ('3f2a9c81d4e7') RETURNING alembic_version.version_num;

COMMIT;

