-- Run once as the PostgreSQL superuser: psql -f deploy/postgresql-bootstrap.sql
-- Then: ADAPTER_DATABASE_URL=postgresql+psycopg://adapter@127.0.0.1:5432/adapter hospital-adapter db upgrade
CREATE ROLE adapter LOGIN;
CREATE DATABASE adapter OWNER adapter ENCODING 'UTF8' TEMPLATE template0;
