BEGIN TRANSACTION;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('3f2a9c81d4e7');
CREATE TABLE user (
	id INTEGER NOT NULL, 
	name VARCHAR(128), 
	PRIMARY KEY (id)
);
COMMIT;
