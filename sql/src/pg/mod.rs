//! What PostgreSQL clients expect of a session beyond queries: the
//! session statements drivers send (`SET`, `SHOW`, `BEGIN ISOLATION LEVEL`,
//! `LISTEN`, `FETCH`, …, recognised in [`command`]), the run-time
//! parameters they read and write ([`settings`]), server-side cursors over
//! a query's output stream ([`cursor`]), advisory locks ([`advisory`]) and
//! the functions that expose them (`current_setting`, `set_config`,
//! `pg_advisory_*`, `pg_typeof`, in [`functions`]), and rewrites of
//! PostgreSQL syntax DataFusion does not plan ([`rewrite`], and correlated
//! scalar subqueries as joins in [`decorrelate`]), PostgreSQL's one-row
//! rule for scalar subqueries ([`single_row`]), and the parser that
//! keeps them ([`parse`]), the names PostgreSQL gives result columns
//! ([`names`]), and catalog functions and columns psql's meta-commands
//! read ([`catalog`]).

pub(crate) mod advisory;
pub(crate) mod catalog;
pub(crate) mod command;
pub(crate) mod cursor;
pub(crate) mod decorrelate;
pub(crate) mod functions;
pub(crate) mod names;
pub(crate) mod parse;
pub(crate) mod rewrite;
pub(crate) mod settings;
pub(crate) mod single_row;
pub(crate) mod typing;
