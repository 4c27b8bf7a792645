//! The resolver: PubGrub over the index, for one target interpreter.
//!
//! Packages are `Root` (the requirements file), `Name` and `Name[extra]` (an extra is a package
//! of its own that depends on its base at the same version, as in uv). Versions follow PEP 440:
//! the newest one that fits wins, like pip, unless the previous lock pins one that still fits;
//! pre-releases only when `--pre` is given or a specifier names one; yanked files only for an
//! exact pin; `Requires-Python` and markers are evaluated for the target. Pages and metadata
//! of every dependency are prefetched on the index client's pool as soon as they are known.

pub(crate) mod report;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use pep440_rs::Version;
use pep508_rs::{ExtraName, PackageName, Requirement, VersionOrUrl};
use pubgrub::{Dependencies, DependencyProvider, PackageResolutionStatistics, Range};

use crate::index::{Client, DistFile, IndexError};
use crate::interpreter::Target;

/// A node of the resolution.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Pkg {
    Root,
    Name(PackageName),
    Extra(PackageName, ExtraName),
}

impl std::fmt::Display for Pkg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pkg::Root => f.write_str("your requirements"),
            Pkg::Name(name) => write!(f, "{name}"),
            Pkg::Extra(name, extra) => write!(f, "{name}[{extra}]"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    #[error(transparent)]
    Index(Arc<IndexError>),
    /// An index error while looking at a package, with what required it.
    #[error("{source}, required by {required_by}")]
    Required {
        required_by: String,
        source: Arc<IndexError>,
    },
    #[error("the requirements cannot be satisfied:\n{0}")]
    NoSolution(String),
    #[error("`{name}` is required from a URL (`{url}`), which `mfplug lock` does not support")]
    Url { name: String, url: String },
    #[error("the resolver failed: {0}")]
    Other(String),
}

/// What the resolver is asked.
pub(crate) struct Request<'a> {
    pub(crate) requirements: &'a [Requirement],
    pub(crate) constraints: &'a [Requirement],
    /// Pins to keep when they still fit (the previous lock, less what is upgraded).
    pub(crate) preferences: HashMap<PackageName, Version>,
    pub(crate) pre: bool,
}

/// A resolved package: its version, the files that fit the target, and who needs it.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) name: PackageName,
    pub(crate) version: Version,
    pub(crate) files: Vec<DistFile>,
    /// Names of the packages that require it; `None` stands for the requirements file.
    pub(crate) via: BTreeSet<Option<String>>,
}

struct Provider<'a> {
    client: Arc<Client>,
    target: Arc<Target>,
    root: Vec<Requirement>,
    constraints: HashMap<PackageName, Range<Version>>,
    preferences: &'a HashMap<PackageName, Version>,
    pre: bool,
    pre_named: Mutex<HashSet<PackageName>>,
    prefetcher: Arc<Prefetcher>,
    /// The first package that required each package, for messages.
    required_by: Mutex<HashMap<PackageName, (Pkg, Option<Version>)>>,
    /// How many times a version of each package (or extra) was chosen.
    choices: Mutex<HashMap<Pkg, u32>>,
}

/// Whether a file fits the target: a wheel with a matching tag, or an sdist.
pub(crate) fn fits(target: &Target, file: &DistFile) -> bool {
    if file.is_wheel && !target.accepts_wheel(&file.filename) {
        return false;
    }
    match &file.requires_python {
        Some(spec) => spec
            .parse::<pep440_rs::VersionSpecifiers>()
            .map(|s| s.contains(&target.python_full_version()))
            .unwrap_or(true),
        None => true,
    }
}

/// The files of `version` that fit the target, yanked ones only when `allow_yanked`.
pub(crate) fn fitting_files<'f>(
    target: &Target,
    files: &'f [DistFile],
    version: &Version,
    allow_yanked: bool,
) -> Vec<&'f DistFile> {
    files
        .iter()
        .filter(|f| &f.version == version && (allow_yanked || !f.yanked) && fits(target, f))
        .collect()
}

/// The file to read a version's metadata from: a wheel with a metadata file, any wheel, an
/// sdist.
fn metadata_file<'f>(files: &[&'f DistFile]) -> Option<&'f DistFile> {
    files
        .iter()
        .find(|f| f.is_wheel && f.metadata.is_some())
        .or_else(|| files.iter().find(|f| f.is_wheel))
        .or_else(|| files.first())
        .copied()
}

/// Walks the dependency graph ahead of the resolver, on the client's pool: a project's page,
/// the metadata of its likely version (the pin to keep, else the newest final release that
/// fits), then the same for each of its dependencies. The resolver then finds almost
/// everything in memory, and the walk's depth, not the number of packages, bounds the
/// waiting.
struct Prefetcher {
    client: Arc<Client>,
    target: Arc<Target>,
    preferences: HashMap<PackageName, Version>,
    seen: Mutex<HashSet<PackageName>>,
}

impl Prefetcher {
    fn go(self: &Arc<Self>, name: &PackageName, extras: Vec<ExtraName>) {
        if !self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.clone())
        {
            return;
        }
        let this = Arc::clone(self);
        let name = name.clone();
        self.client
            .spawn(Box::new(move || this.walk(&name, &extras)));
    }

    fn walk(self: &Arc<Self>, name: &PackageName, extras: &[ExtraName]) {
        let Ok(files) = self.client.project(name) else {
            return;
        };
        let t = &self.target;
        let version = self
            .preferences
            .get(name)
            .filter(|p| files.iter().any(|f| &f.version == *p))
            .cloned()
            .or_else(|| {
                files
                    .iter()
                    .filter(|f| !f.yanked && !f.version.any_prerelease() && fits(t, f))
                    .map(|f| f.version.clone())
                    .max()
            });
        let Some(version) = version else { return };
        let fitting = fitting_files(t, &files, &version, false);
        let Some(file) = metadata_file(&fitting) else {
            return;
        };
        let Ok(metadata) = self.client.metadata(file) else {
            return;
        };
        for req in &metadata.requires_dist {
            if req.evaluate_markers(&t.markers, extras) {
                self.go(&req.name, req.extras.clone());
            }
        }
    }
}

impl Provider<'_> {
    /// The dependencies of a requirement list as PubGrub constraints, markers evaluated for
    /// the target with `extras` active.
    fn constraints_of(
        &self,
        requirements: &[Requirement],
        extras: &[ExtraName],
        skip: &Pkg,
        version: Option<&Version>,
    ) -> Result<pubgrub::DependencyConstraints<Pkg, Range<Version>>, ResolveError> {
        let mut deps: pubgrub::DependencyConstraints<Pkg, Range<Version>> = Default::default();
        for req in requirements {
            if !req.evaluate_markers(&self.target.markers, extras) {
                continue;
            }
            let mut range = match &req.version_or_url {
                None => Range::full(),
                Some(VersionOrUrl::VersionSpecifier(specifiers)) => {
                    if specifiers.iter().any(|s| s.any_prerelease()) {
                        self.pre_named
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .insert(req.name.clone());
                    }
                    version_range(specifiers)
                }
                Some(VersionOrUrl::Url(url)) => {
                    return Err(ResolveError::Url {
                        name: req.name.to_string(),
                        url: url.to_string(),
                    })
                }
            };
            if let Some(constraint) = self.constraints.get(&req.name) {
                range = range.intersection(constraint);
            }
            let mut add = |pkg: Pkg, range: &Range<Version>| {
                if &pkg == skip {
                    return;
                }
                deps.entry(pkg)
                    .and_modify(|r| *r = r.intersection(range))
                    .or_insert_with(|| range.clone());
            };
            add(Pkg::Name(req.name.clone()), &range);
            for extra in &req.extras {
                add(Pkg::Extra(req.name.clone(), extra.clone()), &range);
            }
            self.prefetcher.go(&req.name, req.extras.clone());
            self.required_by
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(req.name.clone())
                .or_insert_with(|| (skip.clone(), version.cloned()));
        }
        Ok(deps)
    }
}

impl DependencyProvider for Provider<'_> {
    type P = Pkg;
    type V = Version;
    type VS = Range<Version>;
    type M = String;
    type Err = ResolveError;
    type Priority = (u8, u32);

    fn prioritize(
        &self,
        package: &Pkg,
        range: &Range<Version>,
        stats: &PackageResolutionStatistics,
    ) -> Self::Priority {
        // Exact pins first (nothing to choose), then the packages in conflict most often.
        let exact = u8::from(pinned(range).is_some());
        let _ = package;
        (exact, stats.conflict_count())
    }

    fn choose_version(
        &self,
        package: &Pkg,
        range: &Range<Version>,
    ) -> Result<Option<Version>, ResolveError> {
        let name = match package {
            Pkg::Root => return Ok(Some(Version::new([0]))),
            Pkg::Name(name) | Pkg::Extra(name, _) => name,
        };
        let files = self.client.project(name).map_err(ResolveError::Index)?;
        let exact = pinned(range).cloned();
        let pre_ok = self.pre
            || self
                .pre_named
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(name);
        let mut versions: Vec<&Version> = files
            .iter()
            .filter(|f| {
                range.contains(&f.version)
                    && (pre_ok || !f.version.any_prerelease())
                    && (!f.yanked || exact.as_ref() == Some(&f.version.clone().without_local()))
                    && fits(&self.target, f)
            })
            .map(|f| &f.version)
            .collect();
        versions.sort();
        versions.dedup();
        if let Some(preferred) = self.preferences.get(name) {
            if versions.contains(&preferred) {
                return Ok(Some(preferred.clone()));
            }
        }
        let chosen = versions.last().map(|v| (*v).clone());
        // Asked again: the resolver is backtracking through this package's versions, so the
        // next older ones' metadata is fetched ahead, in parallel.
        let asked = {
            let mut counts = self.choices.lock().unwrap_or_else(PoisonError::into_inner);
            let count = counts.entry(package.clone()).or_insert(0);
            *count += 1;
            *count
        };
        if asked > 1 {
            for older in versions.iter().rev().skip(1).take(3) {
                let fitting = fitting_files(&self.target, &files, older, false);
                if let Some(file) = metadata_file(&fitting) {
                    let (client, file) = (Arc::clone(&self.client), file.clone());
                    self.client.spawn(Box::new(move || {
                        let _ = client.metadata(&file);
                    }));
                }
            }
        }
        Ok(chosen)
    }

    fn get_dependencies(
        &self,
        package: &Pkg,
        version: &Version,
    ) -> Result<Dependencies<Pkg, Range<Version>, String>, ResolveError> {
        let (name, extra) = match package {
            Pkg::Root => {
                return Ok(Dependencies::Available(self.constraints_of(
                    &self.root,
                    &[],
                    package,
                    None,
                )?))
            }
            Pkg::Name(name) => (name, None),
            Pkg::Extra(name, extra) => (name, Some(extra.clone())),
        };
        let files = self.client.project(name).map_err(ResolveError::Index)?;
        let fitting = fitting_files(&self.target, &files, version, true);
        let Some(file) = metadata_file(&fitting) else {
            return Ok(Dependencies::Unavailable(
                "no file of it fits the target".to_owned(),
            ));
        };
        let metadata = self.client.metadata(file).map_err(ResolveError::Index)?;
        if let Some(requires) = &metadata.requires_python {
            if !requires.contains(&self.target.python_full_version()) {
                return Ok(Dependencies::Unavailable(format!(
                    "it requires Python {requires}, the target is {}",
                    self.target.python_full_version()
                )));
            }
        }
        let extras: Vec<ExtraName> = extra.iter().cloned().collect();
        let mut deps =
            self.constraints_of(&metadata.requires_dist, &extras, package, Some(version))?;
        if extra.is_some() {
            deps.insert(Pkg::Name(name.clone()), Range::singleton(version.clone()));
        }
        Ok(Dependencies::Available(deps))
    }
}

/// Resolves the request for the target: every package of the closure with its files.
pub(crate) fn resolve(
    client: &Arc<Client>,
    target: &Arc<Target>,
    request: &Request<'_>,
) -> Result<Vec<Resolved>, ResolveError> {
    let provider = Provider {
        client: Arc::clone(client),
        target: Arc::clone(target),
        root: request.requirements.to_vec(),
        constraints: constraint_ranges(target, request.constraints),
        preferences: &request.preferences,
        pre: request.pre,
        pre_named: Mutex::default(),
        prefetcher: Arc::new(Prefetcher {
            client: Arc::clone(client),
            target: Arc::clone(target),
            preferences: request.preferences.clone(),
            seen: Mutex::default(),
        }),
        required_by: Mutex::default(),
        choices: Mutex::default(),
    };
    // Start the walk from every requirement at once.
    for req in request.requirements {
        if req.evaluate_markers(&target.markers, &[]) {
            provider.prefetcher.go(&req.name, req.extras.clone());
        }
    }
    let solution = pubgrub::resolve(&provider, Pkg::Root, Version::new([0]))
        .map_err(|e| resolve_error(&provider, e))?;
    collect(client, target, request, &solution)
}

/// The constraints that apply to the target, one range per name (the intersection of all
/// that name it).
fn constraint_ranges(
    target: &Target,
    constraints: &[Requirement],
) -> HashMap<PackageName, Range<Version>> {
    let mut ranges: HashMap<PackageName, Range<Version>> = HashMap::new();
    for c in constraints {
        if !c.evaluate_markers(&target.markers, &[]) {
            continue;
        }
        if let Some(VersionOrUrl::VersionSpecifier(specifiers)) = &c.version_or_url {
            let range = version_range(specifiers);
            ranges
                .entry(c.name.clone())
                .and_modify(|r| *r = r.intersection(&range))
                .or_insert(range);
        }
    }
    ranges
}

/// What a failed PubGrub run means: no solution (explained), an index error (with what
/// required the package), or the provider's own error.
fn resolve_error(
    provider: &Provider<'_>,
    error: pubgrub::PubGrubError<Provider<'_>>,
) -> ResolveError {
    match error {
        pubgrub::PubGrubError::NoSolution(tree) => no_solution(provider, tree),
        pubgrub::PubGrubError::ErrorChoosingVersion {
            package,
            source: ResolveError::Index(source),
        } => index_error(provider, &package, source),
        pubgrub::PubGrubError::ErrorRetrievingDependencies { source, .. }
        | pubgrub::PubGrubError::ErrorChoosingVersion { source, .. } => source,
        e => ResolveError::Other(e.to_string()),
    }
}

/// Explains PubGrub's derivation tree in words.
fn no_solution(
    provider: &Provider<'_>,
    mut tree: pubgrub::DerivationTree<Pkg, Range<Version>, String>,
) -> ResolveError {
    tree.collapse_no_versions();
    let formatter = report::Formatter {
        client: Arc::clone(&provider.client),
        target: Arc::clone(&provider.target),
        pre: provider.pre,
        pre_named: provider
            .pre_named
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone(),
    };
    let text = match &tree {
        // A root requirement nothing fits: PubGrub's tree is a single fact then.
        pubgrub::DerivationTree::External(pubgrub::External::FromDependencyOf(
            _,
            _,
            dep,
            range,
        )) => {
            let term = format!("`{dep}{}`", report::format_range(range));
            let available = formatter.available(dep, range);
            format!(
                "Because you require {term} and there is no usable version of {term}{available}, your requirements cannot be satisfied."
            )
        }
        _ => <pubgrub::DefaultStringReporter as pubgrub::Reporter<_, _, _>>::report_with_formatter(
            &tree, &formatter,
        ),
    };
    ResolveError::NoSolution(text)
}

/// An index error while choosing a version of `package`, with what required it.
fn index_error(provider: &Provider<'_>, package: &Pkg, source: Arc<IndexError>) -> ResolveError {
    let name = match package {
        Pkg::Name(name) | Pkg::Extra(name, _) => Some(name),
        Pkg::Root => None,
    };
    let by = name.and_then(|n| {
        provider
            .required_by
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(n)
            .cloned()
    });
    match by {
        Some((Pkg::Root, _)) => ResolveError::Required {
            required_by: "`requirements-to-freeze.txt`".to_owned(),
            source,
        },
        Some((parent, version)) => ResolveError::Required {
            required_by: match version {
                Some(v) => format!("`{parent}=={v}`"),
                None => format!("`{parent}`"),
            },
            source,
        },
        None => ResolveError::Index(source),
    }
}

/// The chosen packages with their fitting files (their hashes prefetched) and who requires
/// them, from the metadata of the chosen versions (all cached by now).
fn collect(
    client: &Arc<Client>,
    target: &Target,
    request: &Request<'_>,
    solution: &pubgrub::SelectedDependencies<Provider<'_>>,
) -> Result<Vec<Resolved>, ResolveError> {
    let mut extras: BTreeMap<PackageName, Vec<ExtraName>> = BTreeMap::new();
    let mut versions: BTreeMap<PackageName, Version> = BTreeMap::new();
    for (pkg, version) in solution {
        match pkg {
            Pkg::Root => {}
            Pkg::Name(name) => {
                versions.insert(name.clone(), version.clone());
            }
            Pkg::Extra(name, extra) => extras.entry(name.clone()).or_default().push(extra.clone()),
        }
    }
    let mut via: BTreeMap<PackageName, BTreeSet<Option<String>>> = BTreeMap::new();
    for req in request.requirements {
        if req.evaluate_markers(&target.markers, &[]) {
            via.entry(req.name.clone()).or_default().insert(None);
        }
    }
    let mut resolved = Vec::new();
    for (name, version) in &versions {
        let files = client.project(name).map_err(ResolveError::Index)?;
        let mut fitting = fitting_files(target, &files, version, false);
        if fitting.is_empty() {
            // An exact pin of a yanked release.
            fitting = fitting_files(target, &files, version, true);
        }
        if let Some(file) = metadata_file(&fitting) {
            let metadata = client.metadata(file).map_err(ResolveError::Index)?;
            let active = extras.get(name).cloned().unwrap_or_default();
            for req in &metadata.requires_dist {
                if req.name != *name
                    && versions.contains_key(&req.name)
                    && req.evaluate_markers(&target.markers, &active)
                {
                    via.entry(req.name.clone())
                        .or_default()
                        .insert(Some(name.to_string()));
                }
            }
        }
        for file in &fitting {
            client.prefetch_hash(file);
        }
        resolved.push(Resolved {
            name: name.clone(),
            version: version.clone(),
            files: fitting.into_iter().cloned().collect(),
            via: BTreeSet::new(),
        });
    }
    for r in &mut resolved {
        r.via = via.remove(&r.name).unwrap_or_default();
    }
    Ok(resolved)
}

/// The versions `specifiers` allow, as PEP 440 says: `==V` without a local segment also
/// matches `V+anything` (a local build of V), which `pep440_rs`'s conversion leaves out.
fn version_range(specifiers: &pep440_rs::VersionSpecifiers) -> Range<Version> {
    let mut range = Range::full();
    for specifier in specifiers.iter() {
        let version = specifier.version();
        let part =
            if *specifier.operator() == pep440_rs::Operator::Equal && version.local().is_empty() {
                Range::from_range_bounds(version.clone()..after_local_builds(version))
            } else {
                Range::from(specifier.clone())
            };
        range = range.intersection(&part);
    }
    range
}

/// The smallest public version after `version`: every `version+local` lies before it.
fn after_local_builds(version: &Version) -> Version {
    match (version.dev(), version.post()) {
        (Some(dev), _) => version.clone().with_dev(Some(dev + 1)),
        (None, Some(post)) => version.clone().with_post(Some(post + 1)).with_dev(Some(0)),
        (None, None) => version.clone().with_post(Some(0)).with_dev(Some(0)),
    }
}

/// The version of an exact pin, `==V`: one version, or V and its local builds.
pub(crate) fn pinned(range: &Range<Version>) -> Option<&Version> {
    use std::ops::Bound::{Excluded, Included};
    if let Some(version) = range.as_singleton() {
        return Some(version);
    }
    let mut segments = range.iter();
    let (Included(low), Excluded(high)) = segments.next()? else {
        return None;
    };
    (segments.next().is_none() && low.local().is_empty() && *high == after_local_builds(low))
        .then_some(low)
}
