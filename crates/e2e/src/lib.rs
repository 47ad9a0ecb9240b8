//! Browser tests live in `tests/`; run them with `just e2e` (they need `chromium` and
//! `chromedriver`, e.g. Debian's `chromium` and `chromium-driver` packages).
