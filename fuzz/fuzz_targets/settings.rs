//! Any INI/option name and value: Settings::set never panics, and a refused
//! value leaves the settings unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rsession::config::Settings;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (name, value) = s.split_once('=').unwrap_or((s, ""));
    let mut settings = Settings::default();
    if settings.set(name, value).is_err() {
        assert_eq!(settings, Settings::default());
    }
});
