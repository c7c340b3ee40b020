-- Runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d),
-- as POSTGRES_USER. One database per service (DESIGN.md §1); `o2c migrate all` creates
-- the tables. To add them to an existing volume, run these statements with psql.
CREATE DATABASE o2c_orders;
CREATE DATABASE o2c_credit;
CREATE DATABASE o2c_ledger;
CREATE DATABASE o2c_notifier;
