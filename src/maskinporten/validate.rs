//! Where tokens are checked: the compact JWS, its header, the signature and the claims.
//!
//! The order is fixed: size, shape, header (algorithm allow-list, forbidden members, `kid`,
//! `typ`), signature with the key named by `kid`, and only then the claims. The algorithm
//! comes from our allow-list, never from the token alone: the header's `alg` must be in it, and
//! the key's own `alg` (if the JWK names one) must agree; the key checks that itself
//! ([`VerifyingKey::verify`]).
//!
//! Times are compared with saturating arithmetic (`exp` plus the leeway); a token whose `exp`,
//! `iat` or `nbf` lies outside `0..=`[`MAX_NUMERIC_DATE`] (year 9999) and is not already expired
//! or not yet valid by it is refused as `invalid-claims`, and its lifetime (`exp - iat`) is a
//! checked subtraction, so no number in a token can overflow or wrap.

use super::algorithm::Algorithm;
use super::issuer::TokenIssuer;
use super::jwk::VerifyingKey;
use super::token::{self, MaskinportenToken, RawClaims, TokenData};
use crate::reject::RejectionKind;
use crate::strict_json::{Name, from_str_unique};
use arc_swap::ArcSwapOption;
use base64_simd::Out;
use serde::Deserialize;
use serde::de::IgnoredAny;
use smol_str::SmolStr;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Audience policy.
#[derive(Debug, Clone)]
pub(crate) enum AudiencePolicy {
    /// Accept a missing `aud` or `"unspecified"` only (the default: no audience configured).
    Unrestricted,
    /// Require one of these in `aud` (string or array form).
    Require(Box<[Box<str>]>),
}

/// The checks that do not depend on the route.
#[derive(Debug, Clone)]
pub(crate) struct Validator {
    pub issuer: std::sync::Arc<str>,
    /// Whose tokens these are: Altinn's carry claims of their own, checked here.
    pub kind: TokenIssuer,
    pub audience: AudiencePolicy,
    pub leeway_secs: i64,
    pub max_lifetime_secs: Option<i64>,
    pub algorithms: u8,
    pub max_token_bytes: usize,
}

impl Validator {
    pub(crate) fn allowed_bits(algs: &[Algorithm]) -> u8 {
        algs.iter().fold(0, |acc, a| acc | a.bit())
    }
}

/// A token whose shape and header passed; the signature is not checked yet.
pub(crate) struct Unverified<'a> {
    pub alg: Algorithm,
    pub kid: SmolStr,
    /// The header, base64url.
    header: &'a str,
    /// Whether the header came from a [`HeaderMemo`] (it need not be remembered again).
    remembered: bool,
    signing_input: &'a str,
    signature: &'a str,
    payload: &'a str,
}

/// Present when the member is there at all, even as `null`.
#[derive(Default)]
struct Present(bool);

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d)?;
        Ok(Present(true))
    }
}

#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Option<Name<'a>>,
    #[serde(borrow)]
    kid: Option<Name<'a>>,
    #[serde(borrow)]
    typ: Option<Name<'a>>,
    #[serde(default)]
    jku: Present,
    #[serde(default)]
    jwk: Present,
    #[serde(default)]
    x5u: Present,
    #[serde(default)]
    x5c: Present,
    #[serde(default)]
    crit: Present,
    #[serde(default)]
    cty: Present,
    #[serde(default)]
    enc: Present,
    #[serde(default)]
    zip: Present,
    #[serde(default)]
    b64: Present,
}

/// The header of the last token that verified, and what its check found: tokens from one
/// issuer and key carry the same header, so the next one skips decoding and reading it. A
/// header is taken from here only when it is the same bytes (and the allowed algorithms the
/// same); only a token whose signature verified is remembered, so a stream of forged tokens
/// cannot keep replacing it. One entry: when tokens with two headers alternate (two keys in
/// use, or Maskinporten's and Altinn's tokens on one route) it is replaced often, each time for
/// the cost of reading the header plus one small allocation.
#[derive(Default)]
pub(crate) struct HeaderMemo(ArcSwapOption<RememberedHeader>);

struct RememberedHeader {
    /// The header, base64url.
    b64: Box<str>,
    algorithms: u8,
    alg: Algorithm,
    kid: SmolStr,
}

impl HeaderMemo {
    /// The algorithm and `kid` of header `h`, if it is the one remembered.
    fn recall(&self, h: &str, algorithms: u8) -> Option<(Algorithm, SmolStr)> {
        let entry = self.0.load();
        let e = entry.as_deref().filter(|e| e.algorithms == algorithms && *e.b64 == *h)?;
        Some((e.alg, e.kid.clone()))
    }

    /// Remembers the header of `t`, a token whose signature verified with `validator`'s
    /// algorithms.
    pub(crate) fn remember(&self, t: &Unverified<'_>, validator: &Validator) {
        if t.remembered {
            return;
        }
        self.0.store(Some(Arc::new(RememberedHeader {
            b64: t.header.into(),
            algorithms: validator.algorithms,
            alg: t.alg,
            kid: t.kid.clone(),
        })));
    }
}

impl Unverified<'_> {
    /// The payload, base64url: read before verification only to pick the issuer's profile.
    pub(crate) fn payload(&self) -> &str {
        self.payload
    }
}

/// Whether every byte is in the base64url alphabet. No early exit, so that it compiles to vector
/// compares (the payload is most of a kilobyte-long token).
fn is_b64url(s: &str) -> bool {
    s.bytes().fold(true, |ok, b| {
        let letter = (b | 0x20).wrapping_sub(b'a') < 26;
        let digit = b.wrapping_sub(b'0') < 10;
        ok & (letter | digit | (b == b'-') | (b == b'_'))
    })
}

impl Validator {
    /// Checks size, shape and header. `token` is the part after `Bearer `.
    pub(crate) fn parse<'a>(&self, token: &'a str) -> Result<Unverified<'a>, RejectionKind> {
        self.parse_remembered(token, None)
    }

    /// [`Validator::parse`], with the header taken from `memo` when it is byte for byte the
    /// header of a token that verified before (the same issuer and key write the same header on
    /// every token): the check of a header depends on its bytes and the allowed algorithms
    /// alone.
    pub(crate) fn parse_remembered<'a>(&self, token: &'a str, memo: Option<&HeaderMemo>) -> Result<Unverified<'a>, RejectionKind> {
        if token.len() > self.max_token_bytes {
            return Err(RejectionKind::MalformedToken);
        }
        // Two dots, found with `memchr` (SIMD); a third one is not a base64url character, so
        // the checks of the parts refuse it.
        let bytes = token.as_bytes();
        let first = memchr::memchr(b'.', bytes).ok_or(RejectionKind::MalformedToken)?;
        let second = memchr::memchr(b'.', &bytes[first + 1..]).ok_or(RejectionKind::MalformedToken)? + first + 1;
        let (h, p, s) = (&token[..first], &token[first + 1..second], &token[second + 1..]);
        // The payload, most of the token, is checked with the decoder that will read it after
        // the signature (`base64-simd`, SIMD): canonical base64url, or it is refused here.
        if h.is_empty()
            || p.is_empty()
            || s.is_empty()
            || !is_b64url(h)
            || base64_simd::URL_SAFE_NO_PAD.check(p.as_bytes()).is_err()
            || !is_b64url(s)
        {
            return Err(RejectionKind::MalformedToken);
        }
        let (alg, kid, remembered) = match memo.and_then(|m| m.recall(h, self.algorithms)) {
            Some((alg, kid)) => (alg, kid, true),
            None => {
                let (alg, kid) = self.check_header(h)?;
                (alg, kid, false)
            }
        };
        Ok(Unverified {
            alg,
            kid,
            header: h,
            remembered,
            signing_input: &token[..h.len() + 1 + p.len()],
            signature: s,
            payload: p,
        })
    }

    /// The header's algorithm (from the allow-list) and `kid`, or why it is refused.
    fn check_header(&self, h: &str) -> Result<(Algorithm, SmolStr), RejectionKind> {
        // A JWS header is some 70 bytes; one of up to 1 KB is read.
        if decoded_len(h.len()).is_none_or(|n| n > MAX_HEADER_BYTES) {
            return Err(RejectionKind::MalformedToken);
        }
        let (mut stack, mut heap) = (stack_buf::<256>(), Vec::new());
        let header_json = decode_b64url(h, &mut stack, &mut heap).ok_or(RejectionKind::MalformedToken)?;
        let header_json = std::str::from_utf8(header_json).map_err(|_| RejectionKind::MalformedToken)?;
        let header: RawHeader<'_> = from_str_unique(header_json).map_err(|_| RejectionKind::MalformedToken)?;
        let alg = header
            .alg
            .as_deref()
            .and_then(Algorithm::from_name)
            .filter(|a| self.algorithms & a.bit() != 0)
            .ok_or(RejectionKind::UnsupportedAlgorithm)?;
        let forbidden = [
            header.jku,
            header.jwk,
            header.x5u,
            header.x5c,
            header.crit,
            header.cty,
            header.enc,
            header.zip,
            header.b64,
        ];
        if forbidden.iter().any(|p| p.0) {
            return Err(RejectionKind::UnsupportedTokenHeader);
        }
        if let Some(typ) = header.typ.as_deref()
            && !(typ.eq_ignore_ascii_case("JWT") || typ.eq_ignore_ascii_case("at+jwt"))
        {
            return Err(RejectionKind::UnsupportedTokenHeader);
        }
        let kid = header
            .kid
            .filter(|k| !k.is_empty() && k.len() <= 256)
            .ok_or(RejectionKind::UnsupportedTokenHeader)?;
        // A `kid` of up to 23 bytes is kept inline.
        Ok((alg, SmolStr::new(&*kid)))
    }

    /// Verifies the signature with `key`, then the claims. On success the token is verified.
    pub(crate) fn verify(&self, t: &Unverified<'_>, key: &VerifyingKey, now: i64) -> Result<MaskinportenToken, RejectionKind> {
        check_signature(t, key)?;
        // A system-user token's payload is some 650 bytes: decoded on the stack.
        let (mut stack, mut heap) = (stack_buf::<1024>(), Vec::new());
        let payload = decode_b64url(t.payload, &mut stack, &mut heap).ok_or(RejectionKind::MalformedToken)?;
        let payload = std::str::from_utf8(payload).map_err(|_| RejectionKind::MalformedToken)?;
        self.check_claims(payload, now)
    }

    fn check_claims(&self, payload: &str, now: i64) -> Result<MaskinportenToken, RejectionKind> {
        let c: RawClaims<'_> = from_str_unique(payload).map_err(|_| RejectionKind::InvalidClaims)?;
        if c.iss.as_deref() != Some(&*self.issuer) {
            return Err(RejectionKind::WrongIssuer);
        }
        let exp = c.exp.ok_or(RejectionKind::InvalidClaims)?.0;
        let iat = c.iat.ok_or(RejectionKind::InvalidClaims)?.0;
        if now >= exp.saturating_add(self.leeway_secs) {
            return Err(RejectionKind::TokenExpired);
        }
        if iat > now.saturating_add(self.leeway_secs) {
            return Err(RejectionKind::TokenNotYetValid);
        }
        if let Some(nbf) = &c.nbf
            && nbf.0 > now.saturating_add(self.leeway_secs)
        {
            return Err(RejectionKind::TokenNotYetValid);
        }
        // Times that cannot be evaluated (before the epoch, past year 9999) are refused here,
        // after the expiry checks: a token with an `exp` in the past is expired, whatever else.
        let nbf = c.nbf.as_ref().map(|n| n.0);
        if [Some(exp), Some(iat), nbf]
            .into_iter()
            .flatten()
            .any(|t| !(0..=MAX_NUMERIC_DATE).contains(&t))
        {
            return Err(RejectionKind::InvalidClaims);
        }
        if exp < iat {
            return Err(RejectionKind::InvalidClaims);
        }
        // Checked although the range above keeps it from overflowing: `exp - iat` on token
        // numbers must never wrap into a small lifetime.
        let lifetime = exp.checked_sub(iat).ok_or(RejectionKind::InvalidClaims)?;
        if let Some(max) = self.max_lifetime_secs
            && lifetime > max
        {
            return Err(RejectionKind::TokenLifetimeTooLong);
        }
        let audience: &[Name<'_>] = c.aud.as_ref().map_or(&[], token::OneOrMany::as_slice);
        let aud_ok = match &self.audience {
            AudiencePolicy::Unrestricted => audience.is_empty() || (audience.len() == 1 && &*audience[0] == "unspecified"),
            AudiencePolicy::Require(want) => audience.iter().any(|a| want.iter().any(|w| **w == **a)),
        };
        if !aud_ok {
            return Err(RejectionKind::WrongAudience);
        }
        if c.token_type.as_deref().is_some_and(|t| t != "Bearer") {
            return Err(RejectionKind::InvalidClaims);
        }
        let consumer = token::parse_org(c.consumer)?;
        if self.kind == TokenIssuer::Altinn {
            // Altinn's own claims (protocol section 7). Where the sources are silent, refuse.
            if c.nbf.is_none() || c.altinn_authenticate_method.as_deref() != Some("maskinporten") || c.altinn_auth_level != Some(3) {
                return Err(RejectionKind::InvalidClaims);
            }
            let vendor = consumer.as_ref().and_then(|o| o.org_number());
            match (c.altinn_org_number.as_deref(), vendor) {
                (Some(n), Some(v)) if crate::org::OrgNumber::parse_canonical(n) == Ok(v) => {}
                _ => return Err(RejectionKind::InvalidClaims),
            }
        }
        let supplier = token::parse_org(c.supplier)?;
        let system_user = match c.authorization_details {
            Some(details) => details.system_user()?,
            None => None,
        };
        Ok(MaskinportenToken::from_data(TokenData {
            issuer: self.issuer.clone(),
            issuer_kind: self.kind,
            scope: c.scope.as_deref().unwrap_or(""),
            client_id: c.client_id.as_deref(),
            client_amr: c.client_amr.as_deref(),
            consumer,
            supplier,
            jti: c.jti.as_deref(),
            issued_at: iat,
            expires_at: exp,
            audience,
            system_user,
        }))
    }
}

/// The largest JWS header read, decoded.
const MAX_HEADER_BYTES: usize = 1024;

/// The largest signature read, decoded: RSA-8192's.
const MAX_SIGNATURE_BYTES: usize = 1024;

/// Base64url without padding, decoded into `stack` (not zeroed first) if it fits, else into
/// `heap`; `None` if it is not canonical base64url (`base64-simd`: SIMD where the CPU has it,
/// strict about the unused bits of the last character, as the `base64` crate is).
fn decode_b64url<'b>(b64: &str, stack: &'b mut [MaybeUninit<u8>], heap: &'b mut Vec<u8>) -> Option<&'b [u8]> {
    let codec = base64_simd::URL_SAFE_NO_PAD;
    let needed = decoded_len(b64.len())?;
    let decoded = if needed <= stack.len() {
        codec.decode(b64.as_bytes(), Out::from_uninit_slice(stack))
    } else {
        heap.resize(needed, 0);
        codec.decode(b64.as_bytes(), Out::from_slice(&mut heap[..]))
    };
    decoded.ok().map(|d| &*d)
}

/// The exact length of `n` characters of unpadded base64url, decoded; `None` for a length no
/// base64 has (`n % 4 == 1`).
const fn decoded_len(n: usize) -> Option<usize> {
    match n % 4 {
        0 => Some(n / 4 * 3),
        1 => None,
        r => Some(n / 4 * 3 + r - 1),
    }
}

/// Whether a signature of `b64_len` characters is one we read at all: at most
/// [`MAX_SIGNATURE_BYTES`] decoded (RSA-8192's 1,024 bytes are 1,366 characters).
fn signature_fits(b64_len: usize) -> bool {
    decoded_len(b64_len).is_some_and(|n| n <= MAX_SIGNATURE_BYTES)
}

/// An uninitialised buffer of `N` bytes on the stack, for [`decode_b64url`].
const fn stack_buf<const N: usize>() -> [MaybeUninit<u8>; N] {
    [const { MaybeUninit::uninit() }; N]
}

/// Verifies the signature of `t` with `key`. A key whose JWK names an `alg` refuses a token
/// with another one ([`VerifyingKey::verify`]).
pub(crate) fn check_signature(t: &Unverified<'_>, key: &VerifyingKey) -> Result<(), RejectionKind> {
    // RSA-2048 signs with 256 bytes, RSA-4096 with 512: on the stack. Up to RSA-8192 (1,024
    // bytes), the largest key accepted, on the heap.
    if !signature_fits(t.signature.len()) {
        return Err(RejectionKind::InvalidSignature);
    }
    let (mut stack, mut heap) = (stack_buf::<512>(), Vec::new());
    let sig = decode_b64url(t.signature, &mut stack, &mut heap).ok_or(RejectionKind::InvalidSignature)?;
    if !key.verify(t.alg, t.signing_input.as_bytes(), sig) {
        return Err(RejectionKind::InvalidSignature);
    }
    Ok(())
}

/// The latest time a token's `exp`, `iat` or `nbf` may name: 9999-12-31T23:59:59Z. Times
/// outside `0..=MAX_NUMERIC_DATE` cannot be evaluated and make the token `invalid-claims`
/// (unless it is already `token-expired` or `token-not-yet-valid` by them), so that every
/// later computation on them (`exp - iat`, a `SystemTime` from `exp`) stays in range.
pub(crate) const MAX_NUMERIC_DATE: i64 = 253_402_300_799;

/// Seconds since the epoch, now.
pub(crate) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    #[test]
    fn the_decoder_reads_exactly_what_the_base64_crate_reads() {
        // Every length around the stack buffer's size, and a few shapes of bad input: the SIMD
        // decoder and the `base64` crate (strict, no padding) agree on each.
        let mut inputs: Vec<String> = Vec::new();
        for len in [0, 1, 2, 3, 4, 5, 31, 32, 33, 255, 256, 257, 340, 341, 342, 343, 700, 1500] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
            let good = URL_SAFE_NO_PAD.encode(&bytes);
            inputs.push(good.clone());
            inputs.push(format!("{good}="));
            inputs.push(format!("{good}A"));
            if let Some(last) = good.chars().last() {
                // The unused low bits of the last character set: not canonical.
                let mut flipped = good.clone();
                flipped.pop();
                let i = base64::alphabet::URL_SAFE.as_str().find(last).unwrap();
                flipped.push(base64::alphabet::URL_SAFE.as_str().as_bytes()[i ^ 1] as char);
                inputs.push(flipped);
            }
            inputs.push(good.replacen('A', "+", 1));
            inputs.push(good.replacen('A', "/", 1));
        }
        for input in inputs {
            for stack_len in [0usize, 16, 256] {
                let mut stack = vec![MaybeUninit::uninit(); stack_len];
                let mut heap = Vec::new();
                let ours = decode_b64url(&input, &mut stack, &mut heap).map(<[u8]>::to_vec);
                assert_eq!(ours, URL_SAFE_NO_PAD.decode(&input).ok(), "{input:?} (stack {stack_len})");
            }
        }
    }

    #[test]
    fn escaped_claims_and_header_members_read_as_their_plain_spelling() {
        // Strings are borrowed from the payload unless they have escapes: both spellings of
        // every string the checks compare must give the same result.
        let now = now_unix();
        let plain = format!(
            r#"{{"iss":"https://test.maskinporten.no/","scope":"a:b c:d","token_type":"Bearer","exp":{},"iat":{now},"client_id":"cid","jti":"j1","consumer":{{"authority":"iso6523-actorid-upis","ID":"0192:310702641"}}}}"#,
            now + 60
        );
        let escaped = plain
            .replace("https://", r"https:\/\/")
            .replace("a:b c:d", r"a:b\u0020c:d")
            .replace(r#""Bearer""#, r#""Be\u0061rer""#)
            .replace(r#""cid""#, r#""c\u0069d""#)
            .replace("0192:", r"0192\u003a");
        assert_ne!(plain, escaped);
        for payload in [&plain, &escaped] {
            let t = v().check_claims(payload, now).unwrap_or_else(|k| panic!("{k:?}: {payload}"));
            assert_eq!(t.issuer(), "https://test.maskinporten.no/");
            assert_eq!(t.scopes().collect::<Vec<_>>(), ["a:b", "c:d"], "{payload}");
            assert_eq!(t.client_id(), Some("cid"));
            assert_eq!(t.jti(), Some("j1"));
            assert_eq!(
                t.consumer().and_then(|o| o.org_number()).map(|o| o.to_string()).as_deref(),
                Some("310702641")
            );
        }
        // A wrong issuer is wrong in either spelling.
        let other = escaped.replace("test.maskinporten", "maskinporten");
        assert_eq!(v().check_claims(&other, now).err(), Some(RejectionKind::WrongIssuer));
        // Header members too.
        let check = |h: &str| v().parse(&tok(h)).map(|u| (u.alg, u.kid.to_string()));
        assert_eq!(
            check(r#"{"\u0061lg":"RS\u0032\u0035\u0036","kid":"k\u002f1","typ":"J\u0057T"}"#),
            Ok((Algorithm::RS256, "k/1".into()))
        );
    }

    #[test]
    fn decoded_lengths_are_exact_and_every_rsa_signature_fits() {
        for len in 0..2_000usize {
            let encoded = URL_SAFE_NO_PAD.encode(vec![0u8; len]);
            assert_eq!(decoded_len(encoded.len()), Some(len), "{len}");
        }
        assert_eq!(decoded_len(5), None);
        // RSA-2048, 3072, 4096 and 8192 signatures (256, 384, 512, 1,024 bytes) are read; one
        // byte more than RSA-8192's is not.
        for bytes in [256usize, 384, 512, 1024] {
            let encoded = URL_SAFE_NO_PAD.encode(vec![0xA5u8; bytes]);
            assert!(signature_fits(encoded.len()), "{bytes}");
            // RSA-4096's 512 bytes decode on the stack, as the buffer's size intends.
            let mut stack = stack_buf::<512>();
            let mut heap = Vec::new();
            let decoded = decode_b64url(&encoded, &mut stack, &mut heap).unwrap().len();
            assert_eq!(decoded, bytes);
            assert_eq!(heap.is_empty(), bytes <= 512, "{bytes}");
        }
        assert!(!signature_fits(URL_SAFE_NO_PAD.encode([0u8; 1025]).len()));
        assert!(!signature_fits(1367));
    }

    #[test]
    fn b64url_alphabet() {
        for c in 0..=255u8 {
            let expected = c.is_ascii_alphanumeric() || c == b'-' || c == b'_';
            let s = [b'a', c, b'Z'];
            if let Ok(s) = std::str::from_utf8(&s) {
                assert_eq!(is_b64url(s), expected, "{c:#04x}");
            }
        }
        assert!(!is_b64url("abc\u{e9}"));
        // At every position of a longer string.
        let good: String = "AZaz09-_".repeat(13);
        assert!(is_b64url(&good));
        for i in 0..good.len() {
            for bad in [".", "=", "+", "/", " ", "\u{e9}"] {
                let mut s = good.clone();
                s.replace_range(i..=i, bad);
                assert!(!is_b64url(&s), "{bad:?} at {i}");
            }
        }
    }

    /// The default validator for `https://test.maskinporten.no/`, for unit tests.
    pub(crate) fn v() -> Validator {
        Validator {
            kind: TokenIssuer::Maskinporten,
            issuer: "https://test.maskinporten.no/".into(),
            audience: AudiencePolicy::Unrestricted,
            leeway_secs: 10,
            max_lifetime_secs: None,
            algorithms: Validator::allowed_bits(&[Algorithm::RS256, Algorithm::RS384, Algorithm::RS512]),
            max_token_bytes: 8192,
        }
    }

    fn tok(header: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode("{}"),
            URL_SAFE_NO_PAD.encode("sig")
        )
    }

    #[test]
    fn header_rules() {
        let v = v();
        let check = |h: &str| v.parse(&tok(h)).map(|u| (u.alg, u.kid.to_string()));
        assert_eq!(check(r#"{"alg":"RS256","kid":"k"}"#), Ok((Algorithm::RS256, "k".into())));
        assert_eq!(
            check(r#"{"alg":"RS512","kid":"k","typ":"at+JWT"}"#),
            Ok((Algorithm::RS512, "k".into()))
        );
        assert_eq!(check(r#"{"alg":"none","kid":"k"}"#), Err(RejectionKind::UnsupportedAlgorithm));
        assert_eq!(check(r#"{"alg":"HS256","kid":"k"}"#), Err(RejectionKind::UnsupportedAlgorithm));
        assert_eq!(check(r#"{"alg":"rs256","kid":"k"}"#), Err(RejectionKind::UnsupportedAlgorithm));
        assert_eq!(check(r#"{"kid":"k"}"#), Err(RejectionKind::UnsupportedAlgorithm));
        assert_eq!(check(r#"{"alg":"RS256"}"#), Err(RejectionKind::UnsupportedTokenHeader));
        assert_eq!(check(r#"{"alg":"RS256","kid":""}"#), Err(RejectionKind::UnsupportedTokenHeader));
        for m in ["jku", "jwk", "x5u", "x5c", "crit", "cty", "enc", "zip"] {
            assert_eq!(
                check(&format!(r#"{{"alg":"RS256","kid":"k","{m}":null}}"#)),
                Err(RejectionKind::UnsupportedTokenHeader),
                "{m}"
            );
        }
        assert_eq!(
            check(r#"{"alg":"RS256","kid":"k","typ":"JOSE"}"#),
            Err(RejectionKind::UnsupportedTokenHeader)
        );
        assert_eq!(
            check(r#"{"alg":"RS256","kid":"k","alg":"RS256"}"#),
            Err(RejectionKind::MalformedToken)
        );
        assert_eq!(check(r#"not json"#), Err(RejectionKind::MalformedToken));
    }

    #[test]
    fn a_remembered_header_is_recalled_only_for_the_same_bytes_and_algorithms() {
        let v = v();
        let memo = HeaderMemo::default();
        let good = tok(r#"{"alg":"RS256","kid":"k"}"#);
        let first = v.parse_remembered(&good, Some(&memo)).unwrap();
        assert!(!first.remembered, "nothing remembered yet");
        memo.remember(&first, &v);
        let again = v.parse_remembered(&good, Some(&memo)).unwrap();
        assert!(again.remembered);
        assert_eq!((again.alg, again.kid.as_str()), (Algorithm::RS256, "k"));
        assert_eq!(
            (again.signing_input, again.signature, again.payload),
            (first.signing_input, first.signature, first.payload)
        );
        // Every other header is read and judged on its own, as without a memo.
        for h in [
            r#"{"alg":"RS384","kid":"k"}"#,
            r#"{"alg":"RS256","kid":"k2"}"#,
            r#"{"alg":"none","kid":"k"}"#,
            r#"{"alg":"RS256","kid":"k","jku":"x"}"#,
            r#"{"alg":"RS256","kid":"k" }"#,
            r#"{"alg":"RS256","kid":"k","alg":"RS256"}"#,
        ] {
            let with = v
                .parse_remembered(&tok(h), Some(&memo))
                .map(|u| (u.remembered, u.alg, u.kid.to_string()));
            let without = v.parse(&tok(h)).map(|u| (false, u.alg, u.kid.to_string()));
            assert_eq!(with, without, "{h}");
        }
        // A validator that allows other algorithms does not take the remembered verdict.
        let rs512_only = Validator {
            algorithms: Validator::allowed_bits(&[Algorithm::RS512]),
            ..v.clone()
        };
        assert_eq!(
            rs512_only.parse_remembered(&good, Some(&memo)).err(),
            Some(RejectionKind::UnsupportedAlgorithm)
        );
        // A header taken from the memo is not stored again; a new one replaces the old.
        memo.remember(&again, &v);
        let other = tok(r#"{"alg":"RS512","kid":"k9"}"#);
        memo.remember(&v.parse(&other).unwrap(), &v);
        assert!(!v.parse_remembered(&good, Some(&memo)).unwrap().remembered);
        assert!(v.parse_remembered(&other, Some(&memo)).unwrap().remembered);
    }

    #[test]
    fn shape_rules() {
        let v = v();
        let good = tok(r#"{"alg":"RS256","kid":"k"}"#);
        for bad in [
            "".to_owned(),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            format!("{good}="),
            format!("{good}."),
            good.replacen('.', "..", 1),
            format!("{}+", good),
            "x".repeat(9000),
        ] {
            assert_eq!(v.parse(&bad).err(), Some(RejectionKind::MalformedToken), "{bad}");
        }
    }

    /// `check_claims` on a payload with these times, as of `now`.
    fn claims(v: &Validator, exp: &str, iat: &str, nbf: Option<&str>, now: i64) -> Result<(), RejectionKind> {
        let nbf = nbf.map(|n| format!(r#","nbf":{n}"#)).unwrap_or_default();
        let payload = format!(r#"{{"iss":"https://test.maskinporten.no/","exp":{exp},"iat":{iat}{nbf}}}"#);
        v.check_claims(&payload, now).map(|_| ())
    }

    #[test]
    fn token_numbers_that_would_overflow_are_refused() {
        const NOW: i64 = 1_700_000_000;
        let mut v = v();
        v.max_lifetime_secs = Some(120);
        // `exp - iat` would overflow: a debug build panicked here, a release build wrapped to a
        // negative lifetime that passed the maximum.
        assert_eq!(
            claims(&v, &i64::MAX.to_string(), "-1", None, NOW),
            Err(RejectionKind::InvalidClaims)
        );
        assert_eq!(
            claims(&v, &i64::MAX.to_string(), &i64::MIN.to_string(), None, NOW),
            Err(RejectionKind::InvalidClaims)
        );
        // Without a maximum lifetime the same times are still refused: they cannot be evaluated.
        v.max_lifetime_secs = None;
        assert_eq!(
            claims(&v, &i64::MAX.to_string(), "-1", None, NOW),
            Err(RejectionKind::InvalidClaims)
        );
        assert_eq!(
            claims(&v, &i64::MAX.to_string(), &NOW.to_string(), None, NOW),
            Err(RejectionKind::InvalidClaims)
        );
        assert_eq!(claims(&v, "1e14", &NOW.to_string(), None, NOW), Err(RejectionKind::InvalidClaims));
        assert_eq!(
            claims(&v, &(NOW + 60).to_string(), "-1", None, NOW),
            Err(RejectionKind::InvalidClaims)
        );
        assert_eq!(
            claims(&v, &(NOW + 60).to_string(), &NOW.to_string(), Some("-5"), NOW),
            Err(RejectionKind::InvalidClaims)
        );
        // Times already past or still ahead keep their own refusals.
        assert_eq!(
            claims(&v, &i64::MIN.to_string(), &i64::MIN.to_string(), None, NOW),
            Err(RejectionKind::TokenExpired)
        );
        assert_eq!(claims(&v, "-1", "-100", None, NOW), Err(RejectionKind::TokenExpired));
        assert_eq!(
            claims(&v, &i64::MAX.to_string(), &i64::MAX.to_string(), None, NOW),
            Err(RejectionKind::TokenNotYetValid)
        );
        assert_eq!(
            claims(&v, &(NOW + 60).to_string(), &NOW.to_string(), Some(&i64::MAX.to_string()), NOW),
            Err(RejectionKind::TokenNotYetValid)
        );
        // A clock at the far end does not overflow the leeway either.
        assert_eq!(
            claims(&v, &i64::MAX.to_string(), "0", None, i64::MAX),
            Err(RejectionKind::TokenExpired)
        );
        // The unambiguous twins pass, up to the last second of year 9999.
        assert_eq!(
            claims(&v, &(NOW + 60).to_string(), &NOW.to_string(), Some(&NOW.to_string()), NOW),
            Ok(())
        );
        assert_eq!(claims(&v, &MAX_NUMERIC_DATE.to_string(), "0", None, NOW), Ok(()));
        v.max_lifetime_secs = Some(120);
        assert_eq!(claims(&v, &(NOW + 60).to_string(), &(NOW - 60).to_string(), None, NOW), Ok(()));
        assert_eq!(
            claims(&v, &(NOW + 61).to_string(), &(NOW - 60).to_string(), None, NOW),
            Err(RejectionKind::TokenLifetimeTooLong)
        );
        assert_eq!(
            claims(&v, &MAX_NUMERIC_DATE.to_string(), "0", None, NOW),
            Err(RejectionKind::TokenLifetimeTooLong)
        );
    }
}
