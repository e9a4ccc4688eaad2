BEGIN TRANSACTION;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('5d0e7a3b9f14');
CREATE TABLE setting (
	id INTEGER NOT NULL, 
	"key" VARCHAR(64), 
	PRIMARY KEY (id)
);
COMMIT;
