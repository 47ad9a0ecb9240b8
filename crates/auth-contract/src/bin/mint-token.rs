//! `mint-token`: prints a gateway token, signed exactly as the gateway signs its own, for
//! scripts that talk to backend-api without a gateway (the benchmark, the API fuzzer).
//!
//! ```text
//! API_SECRET=... mint-token <user id> <email> [lifetime in seconds, 1 to 300, default 60]
//! ```
//!
//! The secret comes from `API_SECRET` (never from the command line, where other users of the
//! machine could read it); a missing or short one is refused with exit status 78. A lifetime over
//! [`MAX_LIFETIME_SECS`] is refused (exit status 64): the backend would refuse the token.

use std::process::ExitCode;
use std::time::Duration;

use auth_contract::{Claims, DEFAULT_TTL, MAX_LIFETIME_SECS, Secret, Signer};

const USAGE: &str =
    "usage: API_SECRET=... mint-token <user id> <email> [lifetime in seconds, 1 to 300]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (user, email, lifetime) = match args.as_slice() {
        [user, email] => (user, email, Ok(DEFAULT_TTL)),
        [user, email, secs] => (
            user,
            email,
            secs.parse::<u64>()
                .ok()
                .filter(|s| (1..=MAX_LIFETIME_SECS).contains(s))
                .map(Duration::from_secs)
                .ok_or(()),
        ),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(64);
        }
    };
    let (Ok(user), Ok(lifetime)) = (user.parse(), lifetime) else {
        eprintln!(
            "mint-token: the user id must be a UUID and the lifetime 1 to {MAX_LIFETIME_SECS} seconds\n{USAGE}"
        );
        return ExitCode::from(64);
    };
    let secret = match std::env::var("API_SECRET").map(Secret::new) {
        Ok(Ok(secret)) => secret,
        Ok(Err(e)) => {
            eprintln!("mint-token: configuration error: API_SECRET is invalid: {e}");
            return ExitCode::from(78);
        }
        Err(_) => {
            eprintln!("mint-token: configuration error: API_SECRET is not set");
            return ExitCode::from(78);
        }
    };
    match Signer::new(&secret).sign(&Claims::with_lifetime(user, email.as_str(), lifetime)) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mint-token: {e}");
            ExitCode::FAILURE
        }
    }
}
