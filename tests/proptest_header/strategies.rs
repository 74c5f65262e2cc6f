//! The generators of `tests/proptest_header.rs`: valid-looking `Authorization`
//! headers built from known and arbitrary parameters, in any order, case and
//! quoting, with the parameters they were built from.

use proptest::prelude::*;

use super::parse_invariants::quote;

/// One `name=value` of a structured header.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub value: String,
    pub quoted: bool,
}

impl Param {
    pub fn render(&self) -> String {
        if self.quoted {
            format!("{}={}", self.name, quote(&self.value))
        } else {
            format!("{}={}", self.name, self.value)
        }
    }
}

fn any_case(name: &'static str) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<bool>(), name.len()).prop_map(move |upper| {
        name.chars()
            .zip(upper)
            .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
            .collect()
    })
}

/// Any parameter name: a known one in any case, or another token.
fn param_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(KNOWN.to_vec()).prop_flat_map(any_case),
        "[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,12}",
    ]
}

pub const KNOWN: [&str; 12] = [
    "username",
    "username*",
    "realm",
    "nonce",
    "uri",
    "response",
    "algorithm",
    "qop",
    "nc",
    "cnonce",
    "opaque",
    "userhash",
];

/// Any value: a few that matter somewhere, hex, printable and any text.
pub fn param_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9a-fA-F]{0,70}",
        prop::sample::select(vec![
            "auth",
            "auth-int",
            "AUTH",
            "MD5",
            "SHA-256",
            "sha-512-256-sess",
            "true",
            "false",
            "00000001",
            "ffffffff",
            "0",
            "-1",
            "0x10",
            "123456789",
            "",
            "UTF-8''%C3%A4",
            "iso-8859-1''caf%E9",
            "/me",
        ])
        .prop_map(String::from),
        "[ -~]{0,40}",
        any::<String>(),
    ]
}

/// A value for a known parameter: mostly a valid one, sometimes anything.
fn value_for(name: &'static str) -> BoxedStrategy<String> {
    let valid: BoxedStrategy<String> = match name {
        "username" | "realm" | "opaque" => any::<String>().boxed(),
        "username*" => "(UTF-8|utf-8|ISO-8859-1)''[a-zA-Z0-9%]{0,20}".boxed(),
        "nonce" | "cnonce" => "[A-Za-z0-9+/=_-]{1,48}".boxed(),
        "uri" => "/[ -~]{0,40}".boxed(),
        "response" => "[0-9a-fA-F]{32,64}".boxed(),
        "algorithm" => prop::sample::select(vec![
            "MD5",
            "md5",
            "MD5-sess",
            "SHA-256",
            "SHA-256-sess",
            "SHA-512-256",
        ])
        .prop_map(String::from)
        .boxed(),
        "qop" => prop::sample::select(vec!["auth", "auth-int", "AUTH"])
            .prop_map(String::from)
            .boxed(),
        "nc" => "[0-9a-fA-F]{8}".boxed(),
        "userhash" => prop::sample::select(vec!["true", "false", "TRUE"])
            .prop_map(String::from)
            .boxed(),
        other => unreachable!("{other}"),
    };
    prop_oneof![9 => valid, 1 => param_value()].boxed()
}

/// A `name=value` parameter from the three strategies.
pub fn param(
    name: impl Strategy<Value = String>,
    value: impl Strategy<Value = String>,
    quoted: impl Strategy<Value = bool>,
) -> impl Strategy<Value = Param> {
    (name, value, quoted).prop_map(|(name, value, quoted)| Param {
        name,
        value,
        quoted,
    })
}

/// A valid-looking header: each known parameter present with probability
/// 0.95 (username* rarely: it excludes username), mostly with valid values,
/// mostly quoted, in any order and case, plus a few arbitrary parameters
/// (which may repeat a known name), with varied separators and scheme case.
pub fn structured_header() -> impl Strategy<Value = (Vec<Param>, String)> {
    let known: Vec<_> = KNOWN
        .iter()
        .map(|&name| {
            let p = if name == "username*" { 0.05 } else { 0.95 };
            proptest::option::weighted(
                p,
                param(any_case(name), value_for(name), prop::bool::weighted(0.9)),
            )
        })
        .collect();
    let extra = proptest::collection::vec(param(param_name(), param_value(), any::<bool>()), 0..3);
    (
        known,
        extra,
        prop::sample::select(vec![", ", ",", " ,\t", " , , "]),
        prop::sample::select(vec!["Digest ", "digest ", "DIGEST\t", "Digest  "]),
    )
        .prop_flat_map(|(known, extra, sep, scheme)| {
            let params: Vec<Param> = known.into_iter().flatten().chain(extra).collect();
            Just(params).prop_shuffle().prop_map(move |params| {
                let rendered: Vec<String> = params.iter().map(Param::render).collect();
                let header = format!("{scheme}{}", rendered.join(sep));
                (params, header)
            })
        })
}
