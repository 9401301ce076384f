//! `altinn-pep explain [--config FILE]`: reads one token from standard input (never an
//! argument: arguments show in process lists) and says what it is (issuer and environment,
//! client, vendor, scopes, system user, expiry in words) and, with a configuration, which rule
//! refuses it and why, or that it passes. The verdict is the library's own checks
//! (`MaskinportenLayer::check_token`, then `systemuser::require_system_user`), so it cannot
//! disagree with `serve`. The signature is never printed, and the token is sent nowhere: only
//! the issuer's metadata and public keys are fetched.

use std::io::{IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use altinn_systemuser::maskinporten::{MAX_TOKEN_BYTES, PRODUCTION_ISSUER, TEST_ISSUER, UnverifiedToken, altinn_issuer};
use altinn_systemuser::pdp::AltinnEnvironment;
use altinn_systemuser::reject::RejectionKind;
use altinn_systemuser::systemuser::require_system_user;

use crate::config::{self, Built, PepConfig};

/// The longest the check may take (it may fetch the issuer's keys).
const CHECK_BUDGET: Duration = Duration::from_secs(60);

/// Reads the token, describes it, and checks it against the configuration if one is given:
/// 0 when it passes (or, without a configuration, when it can be read), 1 when it is refused,
/// 2 for unusable input or configuration.
pub(crate) async fn run(path: Option<&Path>) -> ExitCode {
    // The configuration first: a broken one is reported before a token is asked for.
    let loaded = match path.map(|p| config::load(p).and_then(|c| c.build().map(|b| (c, b)))) {
        None => None,
        Some(Ok(both)) => Some(both),
        Some(Err(e)) => return crate::config_error(&e),
    };
    let token = match read_token() {
        Ok(t) => t,
        Err(why) => {
            eprintln!("altinn-pep: {why}");
            return ExitCode::from(2);
        }
    };
    let now = SystemTime::now();
    let decoded = UnverifiedToken::decode(&token);
    match &decoded {
        Ok(t) => describe(t, now),
        Err(kind) => say(&format!(
            "the token cannot be read ({}): {}",
            kind.slug(),
            why(*kind, None, None, now)
        )),
    }
    let Some((cfg, built)) = loaded else {
        say("not checked against a configuration (give --config FILE)");
        return if decoded.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    };
    let checked = match tokio::time::timeout(CHECK_BUDGET, built.maskinporten.check_token(&token)).await {
        Ok(r) => r,
        Err(_) => Err(RejectionKind::KeysUnavailable),
    };
    let verdict = checked.and_then(|verified| require_system_user(&verified).map(|_| ()));
    match verdict {
        Ok(()) => {
            say(
                "passes: signature, issuer, lifetime, audience and scopes are as configured, and it carries a system user; \
                 the PDP then decides each request (its route's resource, action and party)",
            );
            ExitCode::SUCCESS
        }
        Err(kind) => {
            say(&format!(
                "refused ({}): {} — {}",
                kind.slug(),
                kind.title(),
                why(kind, decoded.as_ref().ok(), Some((&cfg, &built)), now)
            ));
            ExitCode::FAILURE
        }
    }
}

/// The token on standard input: whitespace around it and a leading `Bearer ` are dropped.
fn read_token() -> Result<String, String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("altinn-pep: paste the token, then press Ctrl-D");
    }
    // A token, a `Bearer ` and some whitespace; anything longer is not one token.
    let limit = MAX_TOKEN_BYTES + 1024;
    let mut buf = Vec::new();
    stdin
        .lock()
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("standard input cannot be read: {}", e.kind()))?;
    if buf.len() > limit {
        return Err(format!("more than {limit} bytes on standard input: give one token"));
    }
    let text = String::from_utf8(buf).map_err(|_| "standard input is not text".to_owned())?;
    let mut token = text.trim();
    if let Some(rest) = token.get(..7).filter(|p| p.eq_ignore_ascii_case("bearer ")).map(|_| &token[7..]) {
        token = rest.trim_start();
    }
    if token.is_empty() {
        return Err("no token on standard input (pipe it in: altinn-pep explain --config FILE < token.txt)".to_owned());
    }
    Ok(token.to_owned())
}

/// One line of output. Everything a token says is text from whoever made it: control characters
/// (a newline, a terminal escape that hides or rewrites text) are shown escaped, so that a
/// token cannot print a verdict of its own.
fn say(line: &str) {
    crate::say(&printable(line));
}

/// `text` with every control character escaped (`\n`, `\u{1b}`).
fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// What the token says about itself, one line each. Never the signature.
fn describe(t: &UnverifiedToken, now: SystemTime) {
    let line = |name: &str, value: String| say(&format!("{name:<12} {value}"));
    say("what the token says (read without checking it):");
    line(
        "issuer",
        match t.issuer() {
            Some(iss) => format!("{iss} ({})", environment(iss)),
            None => "(none)".to_owned(),
        },
    );
    line("client", t.client_id().unwrap_or("(none)").to_owned());
    line("vendor", t.consumer().map_or_else(|| "(none)".to_owned(), ToString::to_string));
    let scopes: Vec<&str> = t.scopes().collect();
    line("scopes", if scopes.is_empty() { "(none)".to_owned() } else { scopes.join(" ") });
    line(
        "system user",
        match t.system_user() {
            Ok(Some(su)) => {
                let mut s = format!("{} of organisation {}, system {}", su.id(), su.owner_org(), su.system_id());
                if let Some(r) = su.external_ref() {
                    s.push_str(&format!(", externalRef {r}"));
                }
                s
            }
            Ok(None) => "(none: not a system-user token)".to_owned(),
            Err(kind) => format!("present but unreadable ({})", kind.slug()),
        },
    );
    if let Some(iat) = t.issued_at() {
        line("issued", format!("{} ({})", rfc3339(iat), relative(iat, now)));
    }
    line(
        "expiry",
        match t.expires_at() {
            Some(exp) => match exp.duration_since(now) {
                Ok(left) => format!("expires in {} ({})", words(left), rfc3339(exp)),
                Err(e) => format!("expired {} ago ({})", words(e.duration()), rfc3339(exp)),
            },
            None => "(none, or not a time between 1970 and 9999)".to_owned(),
        },
    );
    let aud: Vec<&str> = t.audience().collect();
    if !aud.is_empty() {
        line("audience", aud.join(" "));
    }
    line(
        "signed",
        format!(
            "{} with key {} (signature not shown)",
            t.algorithm().unwrap_or("(no alg)"),
            t.key_id().unwrap_or("(no kid)")
        ),
    );
}

/// Which environment an issuer is, in words.
fn environment(issuer: &str) -> String {
    match issuer {
        PRODUCTION_ISSUER => return "Maskinporten production, pairs with Altinn production".to_owned(),
        TEST_ISSUER => return "Maskinporten test, pairs with Altinn TT02".to_owned(),
        _ => {}
    }
    let altinn = [
        (AltinnEnvironment::Production, "production"),
        (AltinnEnvironment::Tt02, "TT02"),
        (AltinnEnvironment::At22, "AT22"),
        (AltinnEnvironment::At23, "AT23"),
        (AltinnEnvironment::At24, "AT24"),
        (AltinnEnvironment::Yt01, "YT01"),
    ];
    for (env, name) in altinn {
        if issuer == altinn_issuer(env.platform_url()) {
            return format!("Altinn {name}, a token from Altinn's exchange");
        }
    }
    "not a Maskinporten or Altinn environment".to_owned()
}

/// Why the configuration refuses a token for `kind`, in words, naming the configuration key.
fn why(kind: RejectionKind, t: Option<&UnverifiedToken>, configured: Option<(&PepConfig, &Built)>, now: SystemTime) -> String {
    let issuer = t.and_then(UnverifiedToken::issuer).unwrap_or("(none)");
    let kid = t.and_then(UnverifiedToken::key_id).unwrap_or("(none)");
    let cfg = configured.map(|(c, _)| &c.maskinporten);
    match kind {
        RejectionKind::MissingToken | RejectionKind::MalformedAuthorization | RejectionKind::MalformedToken => format!(
            "not a compact JWT (three base64url parts, the first two JSON) of at most {MAX_TOKEN_BYTES} bytes: copy the whole token, and only the token"
        ),
        RejectionKind::UnsupportedAlgorithm => format!(
            "alg {} is not among maskinporten.algorithms (RS256, RS384 and RS512 unless set)",
            t.and_then(UnverifiedToken::algorithm).unwrap_or("(none)")
        ),
        RejectionKind::UnsupportedTokenHeader => {
            "the header has no kid, a member that is never accepted (jku, jwk, x5u, x5c, crit, cty, enc, zip, b64) or a typ other than JWT or at+jwt".to_owned()
        }
        RejectionKind::UnknownSigningKey => format!(
            "{issuer} publishes no key {kid}: a token signed in another environment, or with a key the issuer has retired"
        ),
        RejectionKind::InvalidSignature => format!(
            "the signature does not verify with {issuer}'s key {kid}: the token was changed after it was signed, or signed by someone else"
        ),
        RejectionKind::WrongIssuer => {
            let trusted: Vec<String> = configured
                .map(|(_, built)| {
                    built
                        .maskinporten
                        .key_stores()
                        .map(|(which, keys)| {
                            let key = match which {
                                altinn_systemuser::maskinporten::TokenIssuer::Altinn => "maskinporten.altinn_tokens",
                                _ => "maskinporten.issuer",
                            };
                            format!("{key} {} ({})", keys.issuer(), environment(keys.issuer()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "its issuer {issuer} ({}) is not trusted here; trusted: {} — a token from another environment?",
                environment(issuer),
                trusted.join("; ")
            )
        }
        RejectionKind::TokenExpired => match t.and_then(UnverifiedToken::expires_at) {
            Some(exp) => format!(
                "expired {} ago ({}), beyond maskinporten.leeway: get a new token",
                words(now.duration_since(exp).unwrap_or_default()),
                rfc3339(exp)
            ),
            None => "expired: get a new token".to_owned(),
        },
        RejectionKind::TokenNotYetValid => {
            "its iat or nbf lies in the future beyond maskinporten.leeway: this machine's clock or the issuer's is off (altinn-pep doctor compares them)".to_owned()
        }
        RejectionKind::WrongAudience => {
            let aud: Vec<&str> = t.map(|t| t.audience().collect()).unwrap_or_default();
            let want = cfg.map(|c| c.audience.join(" ")).unwrap_or_default();
            if want.is_empty() {
                format!(
                    "it names audience {:?}, and maskinporten.audience is not set (then only none or \"unspecified\" passes)",
                    aud.join(" ")
                )
            } else {
                format!(
                    "it names audience {:?}, not one of maskinporten.audience ({want})",
                    aud.join(" ")
                )
            }
        }
        RejectionKind::TokenLifetimeTooLong => {
            let lives = t
                .and_then(|t| t.expires_at()?.duration_since(t.issued_at()?).ok())
                .map_or_else(|| "longer".to_owned(), words);
            let max = cfg
                .and_then(|c| c.max_token_lifetime)
                .map_or_else(|| "set".to_owned(), words);
            format!("it lives {lives} (exp - iat); maskinporten.max_token_lifetime is {max}")
        }
        RejectionKind::InvalidClaims => {
            "a claim is missing, malformed or out of range: exp and iat (1970–9999), consumer, token_type Bearer; for Altinn tokens also nbf and the urn:altinn:* claims".to_owned()
        }
        RejectionKind::InvalidSystemUser => {
            "its urn:altinn:systemuser entry in authorization_details cannot be read (systemuser_id, systemuser_org, system_id)".to_owned()
        }
        RejectionKind::InsufficientScope => {
            let has: Vec<&str> = t.map(|t| t.scopes().collect()).unwrap_or_default();
            let (all, any) = cfg.map_or((Vec::new(), Vec::new()), |c| (c.require_scope.clone(), c.require_any_scope.clone()));
            let missing: Vec<&str> = all.iter().map(String::as_str).filter(|s| !has.contains(s)).collect();
            let mut out = String::from("it lacks ");
            if !missing.is_empty() {
                out.push_str(&format!("the scope {} (maskinporten.require_scope)", missing.join(" ")));
            }
            if !any.is_empty() && !any.iter().any(|s| has.contains(&s.as_str())) {
                if !missing.is_empty() {
                    out.push_str(" and ");
                }
                out.push_str(&format!("one of {} (maskinporten.require_any_scope)", any.join(" ")));
            }
            out.push_str(&format!(
                "; it has: {} — the vendor's Maskinporten client must be granted the scope and ask for it",
                if has.is_empty() { "(none)".to_owned() } else { has.join(" ") }
            ));
            out
        }
        RejectionKind::KeysUnavailable => format!(
            "the keys of {issuer} could not be fetched, so the signature cannot be checked: run altinn-pep doctor"
        ),
        RejectionKind::NotASystemUser => {
            "a valid token, but without a system user (no urn:altinn:systemuser in authorization_details): every altinn-pep route needs a system-user token".to_owned()
        }
        other => other.title().to_owned(),
    }
}

/// `2026-12-02T18:00:00Z`.
fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `3 minutes ago` or `in 1 minute`.
fn relative(t: SystemTime, now: SystemTime) -> String {
    match t.duration_since(now) {
        Ok(ahead) => format!("in {}", words(ahead)),
        Err(e) => format!("{} ago", words(e.duration())),
    }
}

/// A duration in words, in its largest whole unit: `1 second`, `3 minutes`, `2 hours`, `5 days`.
fn words(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = match s {
        0..60 => (s, "second"),
        60..3600 => (s / 60, "minute"),
        3600..172_800 => (s / 3600, "hour"),
        _ => (s / 86_400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_words() {
        let w = |s| words(Duration::from_secs(s));
        assert_eq!(w(0), "0 seconds");
        assert_eq!(w(1), "1 second");
        assert_eq!(w(59), "59 seconds");
        assert_eq!(w(60), "1 minute");
        assert_eq!(w(179), "2 minutes");
        assert_eq!(w(3600), "1 hour");
        assert_eq!(w(172_799), "47 hours");
        assert_eq!(w(172_800), "2 days");
    }

    #[test]
    fn environments_by_issuer() {
        assert!(environment("https://test.maskinporten.no/").contains("test"));
        assert!(environment("https://maskinporten.no/").contains("production"));
        assert!(environment("https://platform.tt02.altinn.no/authentication/api/v1/openid/").contains("TT02"));
        assert!(environment("http://127.0.0.1:9/").starts_with("not a"));
    }
}
