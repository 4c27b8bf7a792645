//! The words of a resolution failure: PubGrub's derivation tree told as a chain of "Because
//! `a==1` depends on `b<2` and ..." sentences, with PEP 440 operators and the root package
//! named "your requirements".

use pep440_rs::Version;
use pubgrub::{Derived, External, Map, Range, ReportFormatter, Term};

use super::Pkg;

/// Formats with the index's pages and the target at hand, to say which versions exist and why
/// those in range were left out.
pub(crate) struct Formatter {
    pub(crate) client: std::sync::Arc<crate::index::Client>,
    pub(crate) target: std::sync::Arc<crate::interpreter::Target>,
    pub(crate) pre: bool,
    /// Packages whose pre-releases a specifier allowed.
    pub(crate) pre_named: std::collections::HashSet<pep508_rs::PackageName>,
}

impl Formatter {
    /// ` (the index has 1.0, 1.1, 2.0; 2.1rc1 is a pre-release, ...)`: the newest versions of a
    /// package, and why the versions of `set` that exist were not usable.
    pub(crate) fn available(&self, pkg: &Pkg, set: &Range<Version>) -> String {
        let (Pkg::Name(name) | Pkg::Extra(name, _)) = pkg else {
            return String::new();
        };
        let Ok(files) = self.client.project(name) else {
            return String::new();
        };
        let mut versions: Vec<&Version> = files.iter().map(|f| &f.version).collect();
        versions.sort();
        versions.dedup();
        if versions.is_empty() {
            return " (the index lists no file of it)".to_owned();
        }
        let skipped = versions.len().saturating_sub(6);
        let shown: Vec<String> = versions[skipped..].iter().map(|v| v.to_string()).collect();
        let more = if skipped > 0 { "..., " } else { "" };
        let mut why = Vec::new();
        for version in versions.iter().rev().filter(|v| set.contains(v)).take(3) {
            let of_version: Vec<_> = files.iter().filter(|f| &f.version == *version).collect();
            let pre_ok = self.pre || self.pre_named.contains(name);
            let reason = if version.any_prerelease() && !pre_ok {
                "is a pre-release (allow it with `--pre` or a specifier naming it)".to_owned()
            } else if of_version.iter().all(|f| f.yanked) {
                "is yanked (pin it with `==` to use it anyway)".to_owned()
            } else if !of_version.iter().any(|f| super::fits(&self.target, f)) {
                format!("has no file for {}", self.target.describe())
            } else {
                continue;
            };
            why.push(format!("{version} {reason}"));
        }
        let why = if why.is_empty() {
            String::new()
        } else {
            format!("; {}", why.join(", "))
        };
        format!(" (the index has {more}{}{why})", shown.join(", "))
    }
}

/// A version set in PEP 440 words: `==1.0`, `>=1, <2`, `<1 or >=2`.
pub(crate) fn format_range(range: &Range<Version>) -> String {
    use std::ops::Bound::*;
    if range == &Range::full() {
        return String::new();
    }
    if range.is_empty() {
        return " (no version)".to_owned();
    }
    if let Some(version) = super::pinned(range) {
        return format!("=={version}");
    }
    let mut parts = Vec::new();
    for (low, high) in range.iter() {
        let text = match (low, high) {
            (Included(a), Included(b)) if a == b => format!("=={a}"),
            (Unbounded, Unbounded) => String::new(),
            (Unbounded, Included(b)) => format!("<={b}"),
            (Unbounded, Excluded(b)) => format!("<{b}"),
            (Included(a), Unbounded) => format!(">={a}"),
            (Excluded(a), Unbounded) => format!(">{a}"),
            (Included(a), Included(b)) => format!(">={a}, <={b}"),
            (Included(a), Excluded(b)) => format!(">={a}, <{b}"),
            (Excluded(a), Included(b)) => format!(">{a}, <={b}"),
            (Excluded(a), Excluded(b)) => format!(">{a}, <{b}"),
        };
        parts.push(text);
    }
    // `!=V` reads better than `<V or >V`.
    if let [(Unbounded, Excluded(a)), (Excluded(b), Unbounded)] =
        range.iter().collect::<Vec<_>>().as_slice()
    {
        if a == b {
            return format!("!={a}");
        }
    }
    parts.join(" or ")
}

/// `` `a>=1, <2` `` as the requirement says it.
fn plain_term(pkg: &Pkg, range: &Range<Version>) -> String {
    match pkg {
        Pkg::Root => "your requirements".to_owned(),
        _ => format!("`{pkg}{}`", format_range(range)),
    }
}

impl Formatter {
    /// `` `a>=1, <2` ``, said in terms of the versions that exist when that is shorter: a range
    /// holding every known version is the package alone, one holding one version is `==V`.
    fn term(&self, pkg: &Pkg, range: &Range<Version>) -> String {
        let name = match pkg {
            Pkg::Root => return "your requirements".to_owned(),
            Pkg::Name(name) | Pkg::Extra(name, _) => name,
        };
        if super::pinned(range).is_none() && range != &Range::full() {
            if let Ok(files) = self.client.project(name) {
                let mut known: Vec<&Version> = files.iter().map(|f| &f.version).collect();
                known.sort();
                known.dedup();
                let inside: Vec<&&Version> = known.iter().filter(|v| range.contains(v)).collect();
                if !known.is_empty() && inside.len() == known.len() {
                    return format!("`{pkg}`");
                }
                if let [only] = inside.as_slice() {
                    return format!("`{pkg}=={only}`");
                }
            }
        }
        format!("`{pkg}{}`", format_range(range))
    }
}

impl ReportFormatter<Pkg, Range<Version>, String> for Formatter {
    type Output = String;

    fn format_external(&self, external: &External<Pkg, Range<Version>, String>) -> String {
        match external {
            External::NotRoot(_, _) => "we are solving your requirements".to_owned(),
            External::NoVersions(pkg, set) => {
                if set == &Range::full() {
                    format!(
                        "there is no usable version of `{pkg}`{}",
                        self.available(pkg, set)
                    )
                } else {
                    format!(
                        "there is no usable version of {}{}",
                        self.term(pkg, set),
                        self.available(pkg, set)
                    )
                }
            }
            External::Custom(pkg, set, reason) => {
                format!("{} cannot be used: {reason}", self.term(pkg, set))
            }
            External::FromDependencyOf(p, set_p, dep, set_dep) => match p {
                Pkg::Root => format!("you require {}", plain_term(dep, set_dep)),
                _ => format!(
                    "{} depends on {}",
                    self.term(p, set_p),
                    plain_term(dep, set_dep)
                ),
            },
        }
    }

    fn format_terms(&self, terms: &Map<Pkg, Term<Range<Version>>>) -> String {
        let terms: Vec<_> = terms.iter().collect();
        match terms.as_slice() {
            [] => "version solving failed".into(),
            [(Pkg::Root, Term::Positive(_))] => "your requirements cannot be satisfied".to_owned(),
            [(pkg, Term::Positive(range))] => format!("{} cannot be used", self.term(pkg, range)),
            [(pkg, Term::Negative(range))] => format!("{} is required", self.term(pkg, range)),
            [(p1, Term::Positive(r1)), (p2, Term::Negative(r2))]
            | [(p2, Term::Negative(r2)), (p1, Term::Positive(r1))] => self.format_external(
                &External::FromDependencyOf((*p1).clone(), r1.clone(), (*p2).clone(), r2.clone()),
            ),
            slice => {
                let parts: Vec<String> = slice
                    .iter()
                    .map(|(p, t)| match t {
                        Term::Positive(r) => self.term(p, r),
                        Term::Negative(r) => format!("not {}", self.term(p, r)),
                    })
                    .collect();
                format!("{} are incompatible", parts.join(" and "))
            }
        }
    }

    fn explain_both_external(
        &self,
        external1: &External<Pkg, Range<Version>, String>,
        external2: &External<Pkg, Range<Version>, String>,
        current_terms: &Map<Pkg, Term<Range<Version>>>,
    ) -> String {
        format!(
            "Because {} and {}, {}.",
            self.format_external(external1),
            self.format_external(external2),
            self.format_terms(current_terms)
        )
    }

    fn explain_both_ref(
        &self,
        ref_id1: usize,
        derived1: &Derived<Pkg, Range<Version>, String>,
        ref_id2: usize,
        derived2: &Derived<Pkg, Range<Version>, String>,
        current_terms: &Map<Pkg, Term<Range<Version>>>,
    ) -> String {
        format!(
            "Because {} ({ref_id1}) and {} ({ref_id2}), {}.",
            self.format_terms(&derived1.terms),
            self.format_terms(&derived2.terms),
            self.format_terms(current_terms)
        )
    }

    fn explain_ref_and_external(
        &self,
        ref_id: usize,
        derived: &Derived<Pkg, Range<Version>, String>,
        external: &External<Pkg, Range<Version>, String>,
        current_terms: &Map<Pkg, Term<Range<Version>>>,
    ) -> String {
        format!(
            "Because {} ({ref_id}) and {}, {}.",
            self.format_terms(&derived.terms),
            self.format_external(external),
            self.format_terms(current_terms)
        )
    }

    fn and_explain_external(
        &self,
        external: &External<Pkg, Range<Version>, String>,
        current_terms: &Map<Pkg, Term<Range<Version>>>,
    ) -> String {
        format!(
            "And because {}, {}.",
            self.format_external(external),
            self.format_terms(current_terms)
        )
    }

    fn and_explain_ref(
        &self,
        ref_id: usize,
        derived: &Derived<Pkg, Range<Version>, String>,
        current_terms: &Map<Pkg, Term<Range<Version>>>,
    ) -> String {
        format!(
            "And because {} ({ref_id}), {}.",
            self.format_terms(&derived.terms),
            self.format_terms(current_terms)
        )
    }

    fn and_explain_prior_and_external(
        &self,
        prior_external: &External<Pkg, Range<Version>, String>,
        external: &External<Pkg, Range<Version>, String>,
        current_terms: &Map<Pkg, Term<Range<Version>>>,
    ) -> String {
        format!(
            "And because {} and {}, {}.",
            self.format_external(prior_external),
            self.format_external(external),
            self.format_terms(current_terms)
        )
    }
}
