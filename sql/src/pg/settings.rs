//! Run-time parameters of one session, as `SHOW`, `SET`, `RESET`,
//! `current_setting` and `set_config` see them: PostgreSQL's names and
//! defaults for what drivers read, validated where Arbor's behaviour
//! depends on the value (encoding, date style, time zone, isolation).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::error::{Error, Result};

/// `(name as PostgreSQL spells it, default, fixed for the server's life, description)`.
const PARAMETERS: &[(&str, &str, bool, &str)] = &[
    ("application_name", "", false, "Sets the application name to be reported in statistics and logs."),
    ("bytea_output", "hex", false, "Sets the output format for bytea."),
    ("block_size", "8192", true, "Shows the size of a disk block."),
    ("client_encoding", "UTF8", false, "Sets the client's character set encoding."),
    ("client_min_messages", "notice", false, "Sets the message levels that are sent to the client."),
    ("DateStyle", "ISO, MDY", false, "Sets the display format for date and time values."),
    ("default_transaction_deferrable", "off", false, "Sets the default deferrable status of new transactions."),
    ("default_transaction_isolation", "read committed", false, "Sets the transaction isolation level of each new transaction."),
    ("default_transaction_read_only", "off", false, "Sets the default read-only status of new transactions."),
    ("escape_string_warning", "on", false, "Warn about backslash escapes in ordinary string literals."),
    ("extra_float_digits", "1", false, "Sets the number of digits displayed for floating-point values."),
    ("idle_in_transaction_session_timeout", "0", false, "Sets the maximum allowed idle time between queries, when in a transaction."),
    ("in_hot_standby", "off", true, "Shows whether hot standby is currently active."),
    ("integer_datetimes", "on", true, "Shows whether datetimes are integer based."),
    ("IntervalStyle", "postgres", false, "Sets the display format for interval values."),
    ("is_superuser", "on", true, "Shows whether the current user is a superuser."),
    ("lc_collate", "C", true, "Shows the collation order locale."),
    ("lc_ctype", "C", true, "Shows the character classification and case conversion locale."),
    ("lc_messages", "C", false, "Sets the language in which messages are displayed."),
    ("lc_monetary", "C", false, "Sets the locale for formatting monetary amounts."),
    ("lc_numeric", "C", false, "Sets the locale for formatting numbers."),
    ("lc_time", "C", false, "Sets the locale for formatting date and time values."),
    ("lock_timeout", "0", false, "Sets the maximum allowed duration of any wait for a lock."),
    ("max_identifier_length", "63", true, "Shows the maximum identifier length."),
    ("max_index_keys", "32", true, "Shows the maximum number of index keys."),
    ("role", "none", false, "Sets the current role."),
    ("search_path", "\"$user\", public", false, "Sets the schema search order for names that are not schema-qualified."),
    ("server_encoding", "UTF8", true, "Shows the server (database) character set encoding."),
    ("server_version", "15.0", true, "Shows the server version."),
    ("server_version_num", "150000", true, "Shows the server version as an integer."),
    ("session_authorization", "root", false, "Sets the session user name."),
    ("standard_conforming_strings", "on", false, "Causes '...' strings to treat backslashes literally."),
    ("statement_timeout", "0", false, "Sets the maximum allowed duration of any statement."),
    ("synchronous_commit", "on", false, "Sets the current transaction's synchronization level."),
    ("TimeZone", "UTC", false, "Sets the time zone for displaying and interpreting time stamps."),
    ("transaction_deferrable", "off", false, "Whether to defer a read-only serializable transaction until it can be executed with no possible serialization failures."),
    ("transaction_isolation", "read committed", false, "Sets the current transaction's isolation level."),
    ("transaction_read_only", "off", false, "Sets the current transaction's read-only status."),
];

fn known(name: &str) -> Option<&'static (&'static str, &'static str, bool, &'static str)> {
    PARAMETERS.iter().find(|p| p.0.eq_ignore_ascii_case(name))
}

/// One session's parameters, shared with the functions that read and
/// write them (`current_setting`, `set_config`).
#[derive(Clone, Default, Debug)]
pub(crate) struct Settings {
    /// Values set in this session, by lower-case name (defaults are not stored).
    set: Arc<RwLock<BTreeMap<String, String>>>,
    /// Defaults for this session from its start-up (user, application name).
    startup: Arc<RwLock<BTreeMap<String, String>>>,
    /// Bumped by every change, so a reader can tell nothing changed.
    version: Arc<std::sync::atomic::AtomicU64>,
}

/// An isolation level as PostgreSQL spells it in settings.
fn isolation(value: &str) -> Result<String> {
    let v = value.trim().to_ascii_lowercase();
    match v.as_str() {
        "serializable" | "repeatable read" | "read committed" | "read uncommitted" => Ok(v),
        _ => Err(Error::InvalidParameter(format!("invalid value for parameter \"transaction_isolation\": \"{value}\""))),
    }
}

fn boolean(name: &str, value: &str) -> Result<String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" | "t" | "y" => Ok("on".into()),
        "off" | "false" | "no" | "0" | "f" | "n" => Ok("off".into()),
        _ => Err(Error::InvalidParameter(format!("parameter \"{name}\" requires a Boolean value"))),
    }
}

/// `value` checked and normalised for parameter `name` (canonical spelling).
fn normalise(name: &str, value: &str) -> Result<String> {
    match name {
        "client_encoding" => match value.trim().to_ascii_uppercase().replace(['-', '_'], "").as_str() {
            "UTF8" | "UNICODE" => Ok("UTF8".into()),
            _ => Err(Error::Unsupported(format!("client_encoding \"{value}\": Arbor speaks UTF8 only"))),
        },
        "DateStyle" => {
            // Arbor writes dates in ISO form; the order part only affects input.
            let parts: Vec<String> = value.split(',').map(|p| p.trim().to_ascii_uppercase()).collect();
            if !parts.iter().all(|p| matches!(p.as_str(), "ISO" | "SQL" | "POSTGRES" | "GERMAN" | "MDY" | "DMY" | "YMD" | "US" | "EURO" | "EUROPEAN" | "NONEURO" | "NONEUROPEAN")) {
                return Err(Error::InvalidParameter(format!("invalid value for parameter \"DateStyle\": \"{value}\"")));
            }
            if parts.iter().any(|p| matches!(p.as_str(), "US" | "EURO" | "EUROPEAN" | "NONEURO" | "NONEUROPEAN")) || !parts.iter().any(|p| p == "ISO") {
                return Err(Error::Unsupported(format!("DateStyle \"{value}\": Arbor writes dates in ISO style only")));
            }
            let order = parts.iter().find(|p| *p != "ISO").cloned().unwrap_or_else(|| "MDY".into());
            Ok(format!("ISO, {order}"))
        }
        "TimeZone" => {
            let zone = value.trim();
            let parsed: std::result::Result<datafusion::arrow::array::timezone::Tz, _> = zone.parse();
            if parsed.is_err() && !zone.eq_ignore_ascii_case("utc") {
                return Err(Error::InvalidParameter(format!("invalid value for parameter \"TimeZone\": \"{value}\"")));
            }
            Ok(zone.to_string())
        }
        "transaction_isolation" | "default_transaction_isolation" => isolation(value),
        "transaction_read_only" | "default_transaction_read_only" | "transaction_deferrable" | "default_transaction_deferrable"
        | "standard_conforming_strings" | "escape_string_warning" => {
            let v = boolean(name, value)?;
            if name == "standard_conforming_strings" && v == "off" {
                return Err(Error::Unsupported("standard_conforming_strings = off: Arbor reads backslashes literally".into()));
            }
            Ok(v)
        }
        _ => Ok(value.to_string()),
    }
}

impl Settings {
    fn bump(&self) {
        self.version.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// A number that changes whenever a parameter may have.
    pub(crate) fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The name PostgreSQL reports for `name` (`timezone` → `TimeZone`); the
    /// lower-case name for parameters Arbor does not know.
    pub(crate) fn canonical(name: &str) -> String {
        known(name).map_or_else(|| name.to_ascii_lowercase(), |p| p.0.to_string())
    }

    /// The setting a start-up parameter makes, `(name as PostgreSQL spells
    /// it, value)` (`timezone`, `America/New_York` → `TimeZone`); `None` for
    /// keys that are no settings (`database`, `options`), fixed parameters
    /// and invalid values, which the session ignores.
    pub(crate) fn startup_setting(name: &str, value: &str) -> Option<(String, String)> {
        let name = if name == "user" { "session_authorization" } else { name };
        let canonical = Self::canonical(name);
        if known(&canonical).is_none_or(|p| p.2) {
            return None;
        }
        let value = normalise(&canonical, value).ok()?;
        Some((canonical, value))
    }

    /// A start-up parameter (`user`, `application_name`, …) as this session's default.
    pub(crate) fn startup(&self, name: &str, value: &str) {
        if let Some((canonical, v)) = Self::startup_setting(name, value) {
            self.bump();
            if let Ok(mut startup) = self.startup.write() {
                startup.insert(canonical.to_ascii_lowercase(), v);
            }
        }
    }

    /// The value of `name`; `Ok(None)` for an unknown parameter with `missing_ok`.
    pub(crate) fn get(&self, name: &str, missing_ok: bool) -> Result<Option<String>> {
        let key = name.to_ascii_lowercase();
        if let Some(v) = self.set.read().ok().and_then(|s| s.get(&key).cloned()) {
            return Ok(Some(v));
        }
        if let Some(v) = self.startup.read().ok().and_then(|s| s.get(&key).cloned()) {
            return Ok(Some(v));
        }
        // A transaction's characteristics default to the session's.
        if let Some(base) = key.strip_prefix("transaction_") {
            return self.get(&format!("default_transaction_{base}"), missing_ok);
        }
        match known(name) {
            Some(p) => Ok(Some(p.1.to_string())),
            None if missing_ok => Ok(None),
            None => Err(Error::UnknownParameter(format!("unrecognized configuration parameter \"{name}\""))),
        }
    }

    /// `SET name = value` (`None` restores the default); returns the value now in force.
    pub(crate) fn set(&self, name: &str, value: Option<&str>) -> Result<String> {
        let canonical = Self::canonical(name);
        if let Some(p) = known(&canonical) {
            if p.2 {
                return Err(Error::ReadOnlyParameter(format!("parameter \"{}\" cannot be changed", p.0)));
            }
        }
        let key = canonical.to_ascii_lowercase();
        match value {
            None => {
                self.bump();
                if let Ok(mut set) = self.set.write() {
                    set.remove(&key);
                }
            }
            Some(v) => {
                let v = normalise(&canonical, v)?;
                self.bump();
                if let Ok(mut set) = self.set.write() {
                    set.insert(key, v);
                }
            }
        }
        Ok(self.get(&canonical, true)?.unwrap_or_default())
    }

    /// `RESET ALL`: every parameter back to its session default.
    pub(crate) fn reset_all(&self) {
        self.bump();
        if let Ok(mut set) = self.set.write() {
            set.clear();
        }
    }

    /// The end of a transaction: its own characteristics go.
    pub(crate) fn end_transaction(&self) {
        self.bump();
        if let Ok(mut set) = self.set.write() {
            set.retain(|k, _| !k.starts_with("transaction_"));
        }
    }

    /// Every parameter with its value and description (`SHOW ALL`), by name.
    pub(crate) fn all(&self) -> Vec<(String, String, String)> {
        let mut out: BTreeMap<String, (String, String, String)> = PARAMETERS
            .iter()
            .map(|p| (p.0.to_ascii_lowercase(), (p.0.to_string(), String::new(), p.3.to_string())))
            .collect();
        let set = self.set.read().map(|s| s.clone()).unwrap_or_default();
        for k in set.keys() {
            out.entry(k.clone()).or_insert_with(|| (k.clone(), String::new(), String::new()));
        }
        out.into_values()
            .map(|(name, _, description)| {
                let value = self.get(&name, true).ok().flatten().unwrap_or_default();
                (name, value, description)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_read_set_and_reset() {
        let s = Settings::default();
        assert_eq!(s.get("server_version_num", false).unwrap().as_deref(), Some("150000"));
        assert_eq!(s.get("timezone", false).unwrap().as_deref(), Some("UTC"));
        assert!(matches!(s.get("nosuch", false), Err(Error::UnknownParameter(_))));
        assert_eq!(s.get("nosuch", true).unwrap(), None);
        assert_eq!(s.set("TIMEZONE", Some("Europe/Berlin")).unwrap(), "Europe/Berlin");
        assert_eq!(s.get("TimeZone", false).unwrap().as_deref(), Some("Europe/Berlin"));
        assert!(matches!(s.set("TimeZone", Some("Mars/Olympus")), Err(Error::InvalidParameter(_))));
        assert!(matches!(s.set("server_version", Some("16")), Err(Error::ReadOnlyParameter(_))));
        assert_eq!(s.set("datestyle", Some("iso")).unwrap(), "ISO, MDY");
        assert!(matches!(s.set("DateStyle", Some("SQL, DMY")), Err(Error::Unsupported(_))));
        assert_eq!(s.set("client_encoding", Some("utf-8")).unwrap(), "UTF8");
        assert_eq!(s.set("myapp.tenant", Some("7")).unwrap(), "7");
        assert_eq!(s.set("transaction_isolation", Some("SERIALIZABLE")).unwrap(), "serializable");
        s.end_transaction();
        assert_eq!(s.get("transaction_isolation", false).unwrap().as_deref(), Some("read committed"));
        s.set("default_transaction_isolation", Some("repeatable read")).unwrap();
        assert_eq!(s.get("transaction_isolation", false).unwrap().as_deref(), Some("repeatable read"));
        s.startup("application_name", "psql");
        assert_eq!(s.get("application_name", false).unwrap().as_deref(), Some("psql"));
        s.reset_all();
        assert_eq!(s.get("TimeZone", false).unwrap().as_deref(), Some("UTC"));
        assert_eq!(s.get("myapp.tenant", true).unwrap(), None);
        assert_eq!(s.get("application_name", false).unwrap().as_deref(), Some("psql"));
        assert_eq!(s.set("application_name", None).unwrap(), "psql");
        assert_eq!(Settings::startup_setting("timezone", "America/New_York"), Some(("TimeZone".into(), "America/New_York".into())));
        assert_eq!(Settings::startup_setting("TimeZone", "Mars/Olympus"), None);
        assert_eq!(Settings::startup_setting("database", "arbor"), None);
    }
}
