-- Run once by the postgres image on an empty data directory (compose.yaml): one database per
-- store, owned by the POSTGRES_USER the entrypoint connects as. Each server creates and
-- migrates its schema at start.
CREATE DATABASE risk;
CREATE DATABASE incident;
CREATE DATABASE gateway;
