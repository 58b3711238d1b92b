//! [`GitSource`]: a bare local mirror of one remote, fetched with git2, whose trees are read
//! straight from the object database (never a working copy, so a push cannot race a read).

use base64::Engine as _;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use git2::{
    AutotagOption, Cred, CredentialType, ErrorClass, ErrorCode, FetchOptions, FetchPrune,
    ObjectType, Oid, RemoteCallbacks, Repository, TreeWalkMode, TreeWalkResult,
};

use super::Revision;

/// The ref the remote's `HEAD` is fetched into when the configured reference is `"HEAD"`.
const REMOTE_HEAD_REF: &str = "refs/drover/remote-head";

/// Username sent with an HTTPS token when none is configured; GitHub, GitLab (any non-empty
/// username with a token), Gitea and Bitbucket access tokens all accept it as a password.
const DEFAULT_TOKEN_USERNAME: &str = "x-access-token";

/// How often libgit2 may ask for credentials in one fetch before we give up (it asks again after
/// every rejection, so without a limit a wrong token loops forever).
const MAX_CREDENTIAL_ATTEMPTS: u32 = 3;

/// Where the credentials for a remote come from. The secrets themselves are read at fetch time
/// (so a rotated token file is picked up) and never stored here or logged.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GitAuth {
    /// Username for HTTPS or SSH; defaults to `x-access-token` (HTTPS token) or the URL's user
    /// (SSH, else `git`).
    pub username: Option<String>,
    /// File holding an HTTPS token (sent as the password); surrounding whitespace is trimmed.
    pub token_file: Option<PathBuf>,
    /// Environment variable holding an HTTPS token (sent as the password).
    pub token_env: Option<String>,
    /// Private key file for SSH remotes.
    pub ssh_key_file: Option<PathBuf>,
    /// Environment variable holding the SSH key's passphrase, if it has one.
    pub ssh_key_passphrase_env: Option<String>,
}

impl fmt::Debug for GitAuth {
    // Only say which sources are configured: even paths and variable names hint at secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |v: bool| if v { "<set>" } else { "<unset>" };
        f.debug_struct("GitAuth")
            .field("username", &self.username)
            .field("token_file", &set(self.token_file.is_some()))
            .field("token_env", &set(self.token_env.is_some()))
            .field("ssh_key_file", &set(self.ssh_key_file.is_some()))
            .field(
                "ssh_key_passphrase_env",
                &set(self.ssh_key_passphrase_env.is_some()),
            )
            .finish()
    }
}

impl GitAuth {
    fn has_token(&self) -> bool {
        self.token_file.is_some() || self.token_env.is_some()
    }

    /// The HTTPS token, read now from its file or variable.
    fn token(&self) -> Result<Option<String>, String> {
        if let Some(path) = &self.token_file {
            let raw = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
            let token = raw.trim();
            if token.is_empty() {
                return Err(format!("token file {} is empty", path.display()));
            }
            return Ok(Some(token.to_string()));
        }
        if let Some(var) = &self.token_env {
            return match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_string())),
                _ => Err(format!(
                    "environment variable {var} (git token) is unset or empty"
                )),
            };
        }
        Ok(None)
    }

    fn passphrase(&self) -> Result<Option<String>, String> {
        match &self.ssh_key_passphrase_env {
            None => Ok(None),
            Some(var) => std::env::var(var)
                .map(Some)
                .map_err(|_| format!("environment variable {var} (ssh key passphrase) is unset")),
        }
    }
}

/// What to follow: a remote and one reference in it.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceConfig {
    /// A local path, or a `file://`, `git://`, `http(s)://`, `ssh://` or scp-like
    /// (`git@host:org/repo.git`) URL.
    pub url: String,
    /// A branch, a tag, a full ref (`refs/...`), or `"HEAD"` for the remote's default branch.
    pub reference: String,
    /// How often to fetch (default 60 s; the watcher adds ±10 % jitter).
    pub poll_interval: Duration,
    /// Credentials for the remote.
    pub auth: GitAuth,
    /// Commit signature verification (`None`: off).
    pub verify: Option<super::verify::VerifyPolicy>,
}

impl SourceConfig {
    /// A config following the remote's `HEAD` every 60 s without credentials.
    pub fn new(url: impl Into<String>) -> Self {
        SourceConfig {
            url: url.into(),
            ..SourceConfig::default()
        }
    }
}

impl fmt::Debug for SourceConfig {
    // The URL may embed a token (`https://user:token@host/...`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceConfig")
            .field("url", &redact_url(&self.url))
            .field("reference", &self.reference)
            .field("poll_interval", &self.poll_interval)
            .field("auth", &self.auth)
            .field("verify", &self.verify)
            .finish()
    }
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            url: String::new(),
            reference: "HEAD".to_string(),
            poll_interval: Duration::from_secs(60),
            auth: GitAuth::default(),
            verify: None,
        }
    }
}

/// Fetching or reading Git failed. URLs in messages never carry credentials.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The local mirror could not be created or opened.
    #[error("cannot open git mirror at {path}")]
    Mirror {
        /// The mirror directory.
        path: String,
        /// libgit2's error.
        #[source]
        source: git2::Error,
    },
    /// Fetching from the remote failed. The libgit2 message is kept as text (scrubbed of
    /// credentials) rather than as a source, because libgit2 may echo the URL.
    #[error("fetch {url}: {message}")]
    Fetch {
        /// The remote URL, without credentials.
        url: String,
        /// What went wrong, scrubbed of credentials.
        message: String,
        /// Whether retrying later may succeed (network, timeouts, server errors).
        transient: bool,
    },
    /// Credentials are configured but could not be read, or the remote rejected them.
    #[error("authentication for {url}: {message}")]
    Auth {
        /// The remote URL, without credentials.
        url: String,
        /// What went wrong (never the secret itself).
        message: String,
    },
    /// The reference does not exist (unknown branch or tag, or an empty repository).
    #[error("{reference:?} not found in {url} (unknown branch or tag, or empty repository)")]
    RefNotFound {
        /// The remote URL, without credentials.
        url: String,
        /// The branch, tag, ref or commit asked for.
        reference: String,
    },
    /// Reading a commit or its tree from the mirror failed.
    #[error("cannot read {what} from the git mirror")]
    Read {
        /// The commit or object being read.
        what: String,
        /// libgit2's error.
        #[source]
        source: git2::Error,
    },
    /// A local repository operation (seeding, committing) failed.
    #[error("git {action} in {path}")]
    Local {
        /// What was being done.
        action: String,
        /// The repository path.
        path: String,
        /// libgit2's error.
        #[source]
        source: git2::Error,
    },
    /// Copying files for a local repository failed.
    #[error("cannot {action} {path}")]
    Io {
        /// What was being done.
        action: String,
        /// The file or folder.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A fetched commit failed signature verification (or the keys could not be read); the
    /// last verified revision stays in force.
    #[error("{0}")]
    Unverified(#[from] super::verify::VerifyError),
    /// The fetch was cancelled (shutdown or timeout).
    #[error("fetch {url} cancelled")]
    Cancelled {
        /// The remote URL, without credentials.
        url: String,
    },
}

impl SourceError {
    /// Whether a fetched commit was refused by signature verification (not a fetch failure).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            SourceError::Unverified(super::verify::VerifyError::Refused { .. })
        )
    }

    /// Whether a later attempt may succeed without a configuration change.
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Fetch { transient, .. } => *transient,
            SourceError::Cancelled { .. } => true,
            _ => false,
        }
    }
}

/// The URL as it may be shown: any password or token in it replaced by `***`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            // set_password only fails for cannot-be-a-base URLs, which carry no password.
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        // Over HTTP(S) a user name without a password is a token (`https://<token>@host/…`,
        // as GitHub and GitLab accept it); over SSH it is only the login (`git@`).
        Ok(mut u) if !u.username().is_empty() && matches!(u.scheme(), "http" | "https") => {
            let _ = u.set_username("***");
            u.to_string()
        }
        _ => raw.to_string(),
    }
}

/// A commit's subject, author and time ([`GitSource::commit_info`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommitInfo {
    /// Full commit id.
    pub id: String,
    /// The first line of its message.
    pub subject: String,
    /// The author's name.
    pub author: String,
    /// Unix seconds of its commit time.
    pub time: i64,
}

/// How a followed branch moved between two fetched commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Movement {
    /// The same commit.
    Same,
    /// The new commit descends from the old one (the usual push).
    Forward,
    /// The new commit is an ancestor of the old one (a force-push back, a reset).
    Backward,
    /// The histories diverged from a common ancestor (a rebase, an amended commit).
    Rewritten,
    /// No common history at all.
    Unrelated,
}

/// One remote, mirrored into a bare repository under drover's data dir. Cheap to clone: it holds
/// only the config and the mirror's path, and opens the repository per call.
#[derive(Debug, Clone)]
pub struct GitSource {
    config: SourceConfig,
    mirror: PathBuf,
    cancel: Arc<AtomicBool>,
    known_hosts: Option<PathBuf>,
}

impl GitSource {
    /// Create (or reopen) the bare mirror at `mirror_dir` for `config.url`.
    pub fn open(config: SourceConfig, mirror_dir: &Path) -> Result<GitSource, SourceError> {
        let mirror_err = |source| SourceError::Mirror {
            path: mirror_dir.display().to_string(),
            source,
        };
        if let Err(source) = std::fs::create_dir_all(mirror_dir) {
            return Err(SourceError::Io {
                action: "create".to_string(),
                path: mirror_dir.display().to_string(),
                source,
            });
        }
        match Repository::open_bare(mirror_dir) {
            Ok(_) => {}
            Err(e) if e.code() == ErrorCode::NotFound => {
                Repository::init_bare(mirror_dir).map_err(mirror_err)?;
            }
            Err(e) => return Err(mirror_err(e)),
        }
        let mut config = config;
        if config.reference.trim().is_empty() {
            config.reference = "HEAD".to_string();
        }
        Ok(GitSource {
            config,
            mirror: mirror_dir.to_path_buf(),
            cancel: Arc::new(AtomicBool::new(false)),
            known_hosts: None,
        })
    }

    /// Trust the SSH host keys listed in `file` (OpenSSH `known_hosts` format, plain host names)
    /// in addition to `~/.ssh/known_hosts`, which libgit2 always consults. A host listed there
    /// with a different key is refused.
    pub fn with_known_hosts(mut self, file: PathBuf) -> Self {
        self.known_hosts = Some(file);
        self
    }

    /// The configuration this source follows.
    pub fn config(&self) -> &SourceConfig {
        &self.config
    }

    /// The remote URL without credentials, for messages.
    pub fn display_url(&self) -> String {
        redact_url(&self.config.url)
    }

    /// Ask a running [`GitSource::fetch`] (on any clone) to stop at its next progress callback.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    fn repo(&self) -> Result<Repository, SourceError> {
        Repository::open_bare(&self.mirror).map_err(|source| SourceError::Mirror {
            path: self.mirror.display().to_string(),
            source,
        })
    }

    /// Fetch the configured reference (plus all branches and tags, force-updated and pruned, so
    /// force-pushes and deletions are seen), resolve it to a commit and read its whole tree.
    pub fn fetch(&self) -> Result<Revision, SourceError> {
        let (repo, oid) = self.fetch_oid()?;
        read_revision(&repo, oid)
    }

    /// Like [`GitSource::fetch`], but only resolve the reference to a commit id: the cheap check
    /// when the tree of a known commit need not be read again.
    pub fn fetch_commit(&self) -> Result<String, SourceError> {
        self.fetch_oid().map(|(_, oid)| oid.to_string())
    }

    fn fetch_oid(&self) -> Result<(Repository, Oid), SourceError> {
        self.cancel.store(false, Ordering::SeqCst);
        let repo = self.repo()?;
        let url = self.display_url();
        let mut refspecs = vec![
            "+refs/heads/*:refs/heads/*".to_string(),
            "+refs/tags/*:refs/tags/*".to_string(),
        ];
        let follows_head = self.config.reference == "HEAD";
        if follows_head {
            refspecs.push(format!("+HEAD:{REMOTE_HEAD_REF}"));
        }

        let auth_problem: std::cell::RefCell<Option<String>> = std::cell::RefCell::new(None);
        let host_key_problem: std::cell::RefCell<Option<String>> = std::cell::RefCell::new(None);
        let attempts = Cell::new(0u32);
        let mut callbacks = RemoteCallbacks::new();
        callbacks.credentials(|_url, username_from_url, allowed| {
            attempts.set(attempts.get() + 1);
            let result = self.credentials(username_from_url, allowed, attempts.get());
            if let Err(message) = &result {
                *auth_problem.borrow_mut() = Some(message.clone());
            }
            result.map_err(|m| git2::Error::from_str(&m))
        });
        if let Some(file) = &self.known_hosts {
            let port = ssh_port(&self.config.url);
            let host_key_problem = &host_key_problem;
            callbacks.certificate_check(move |cert, host| {
                match cert.as_hostkey().and_then(|k| k.hostkey()) {
                    Some(key) => {
                        let checked = check_known_host(file, host, port, key);
                        if let Err(e) = &checked {
                            *host_key_problem.borrow_mut() = Some(e.message().to_string());
                        }
                        checked
                    }
                    None => Ok(git2::CertificateCheckStatus::CertificatePassthrough),
                }
            });
        }
        let cancel = Arc::clone(&self.cancel);
        callbacks.transfer_progress(move |_| !cancel.load(Ordering::SeqCst));
        let cancel = Arc::clone(&self.cancel);
        callbacks.sideband_progress(move |_| !cancel.load(Ordering::SeqCst));

        let mut options = FetchOptions::new();
        options
            .remote_callbacks(callbacks)
            .prune(FetchPrune::On)
            .download_tags(AutotagOption::None);
        let mut proxy = git2::ProxyOptions::new();
        proxy.auto();
        options.proxy_options(proxy);

        if let Some(path) = local_path(&self.config.url)
            && !path.exists()
        {
            return Err(SourceError::Fetch {
                url,
                message: "no repository at this path".to_string(),
                transient: true,
            });
        }
        let mut remote = repo
            .remote_anonymous(&self.config.url)
            .map_err(|e| self.fetch_error(&e))?;
        let fetched = remote.fetch(&refspecs, Some(&mut options), None);
        drop(remote);
        drop(options);
        if let Err(e) = fetched {
            if self.cancel.load(Ordering::SeqCst) {
                return Err(SourceError::Cancelled { url });
            }
            if let Some(message) = host_key_problem.into_inner() {
                // libgit2 replaces our reason with a generic one; keep ours.
                return Err(SourceError::Fetch {
                    url,
                    message,
                    transient: false,
                });
            }
            if let Some(message) = auth_problem.into_inner() {
                return Err(SourceError::Auth { url, message });
            }
            // libssh2 reports a refused key or a wrong passphrase as a generic SSH error.
            let ssh_auth = e.class() == ErrorClass::Ssh && e.message().contains("authenticate");
            if e.code() == ErrorCode::Auth || ssh_auth {
                return Err(SourceError::Auth {
                    url,
                    message: scrub(e.message(), &self.config.url),
                });
            }
            // An empty remote advertises no HEAD; libgit2 then cannot match the HEAD refspec.
            return Err(self.fetch_error(&e));
        }

        let wanted = if follows_head {
            REMOTE_HEAD_REF.to_string()
        } else {
            self.config.reference.clone()
        };
        let oid = self
            .resolve_in(&repo, &wanted, false)
            .map_err(|e| match e {
                SourceError::RefNotFound { url, .. } => SourceError::RefNotFound {
                    url,
                    reference: self.config.reference.clone(),
                },
                other => other,
            })?;
        Ok((repo, oid))
    }

    /// Check the signatures of what fetched commit `tip` brings after the `verified` one
    /// (`repo.verify`); a no-op when verification is off.
    pub fn verify_new(&self, verified: Option<&str>, tip: &str) -> Result<(), SourceError> {
        let Some(policy) = &self.config.verify else {
            return Ok(());
        };
        let repo = self.repo()?;
        let read = |what: &str| {
            let what = what.to_string();
            move |source| SourceError::Read { what, source }
        };
        let tip = Oid::from_str(tip).map_err(read(tip))?;
        let verified = verified.and_then(|id| Oid::from_str(id).ok());
        policy.check(&repo, verified, tip)?;
        Ok(())
    }

    /// Read an older (or any) commit or ref from the mirror, without network access.
    pub fn revision_at(&self, commit_or_ref: &str) -> Result<Revision, SourceError> {
        let repo = self.repo()?;
        let oid = self.resolve_in(&repo, commit_or_ref, true)?;
        read_revision(&repo, oid)
    }

    /// Who wrote a commit of the mirror and when, with its subject (the status page shows it
    /// beside each app's revision). Reads the commit object only, not its tree.
    pub fn commit_info(&self, commit: &str) -> Result<CommitInfo, SourceError> {
        let repo = self.repo()?;
        let read = |source| SourceError::Read {
            what: format!("commit {commit}"),
            source,
        };
        let oid = Oid::from_str(commit).map_err(read)?;
        let found = repo.find_commit(oid).map_err(read)?;
        let author = found.author();
        Ok(CommitInfo {
            id: oid.to_string(),
            subject: String::from_utf8_lossy(found.summary_bytes().unwrap_or_default())
                .into_owned(),
            author: String::from_utf8_lossy(author.name_bytes()).into_owned(),
            time: found.time().seconds(),
        })
    }

    /// The full commit id a commit (full or abbreviated), branch, tag or ref names in the mirror.
    pub fn resolve(&self, commit_or_ref: &str) -> Result<String, SourceError> {
        let repo = self.repo()?;
        self.resolve_in(&repo, commit_or_ref, true)
            .map(|oid| oid.to_string())
    }

    /// How the branch moved from commit `old` to commit `new` (both full ids in the mirror).
    pub fn movement(&self, old: &str, new: &str) -> Result<Movement, SourceError> {
        let repo = self.repo()?;
        let read = |what: &str| {
            let what = what.to_string();
            move |source| SourceError::Read { what, source }
        };
        let old_id = Oid::from_str(old).map_err(read(old))?;
        let new_id = Oid::from_str(new).map_err(read(new))?;
        if old_id == new_id {
            return Ok(Movement::Same);
        }
        if repo
            .graph_descendant_of(new_id, old_id)
            .map_err(read(new))?
        {
            return Ok(Movement::Forward);
        }
        if repo
            .graph_descendant_of(old_id, new_id)
            .map_err(read(old))?
        {
            return Ok(Movement::Backward);
        }
        match repo.merge_base(old_id, new_id) {
            Ok(_) => Ok(Movement::Rewritten),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(Movement::Unrelated),
            Err(source) => Err(read(new)(source)),
        }
    }

    fn resolve_in(
        &self,
        repo: &Repository,
        name: &str,
        allow_revspec: bool,
    ) -> Result<Oid, SourceError> {
        let not_found = || SourceError::RefNotFound {
            url: self.display_url(),
            reference: name.to_string(),
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(not_found());
        }
        let candidates: Vec<String> = if name == "HEAD" {
            vec![REMOTE_HEAD_REF.to_string()]
        } else if name.starts_with("refs/") {
            vec![name.to_string()]
        } else {
            vec![format!("refs/heads/{name}"), format!("refs/tags/{name}")]
        };
        for candidate in &candidates {
            match repo.find_reference(candidate) {
                Ok(reference) => {
                    let commit =
                        reference
                            .peel_to_commit()
                            .map_err(|source| SourceError::Read {
                                what: candidate.clone(),
                                source,
                            })?;
                    return Ok(commit.id());
                }
                Err(e) if e.code() == ErrorCode::NotFound || e.code() == ErrorCode::InvalidSpec => {
                }
                Err(source) => {
                    return Err(SourceError::Read {
                        what: candidate.clone(),
                        source,
                    });
                }
            }
        }
        if allow_revspec {
            // A commit id (full or abbreviated) or an expression like `main~1`.
            if let Ok(object) = repo.revparse_single(name)
                && let Ok(commit) = object.peel_to_commit()
            {
                return Ok(commit.id());
            }
        }
        Err(not_found())
    }

    fn credentials(
        &self,
        username_from_url: Option<&str>,
        allowed: CredentialType,
        attempt: u32,
    ) -> Result<Cred, String> {
        let auth = &self.config.auth;
        if attempt > MAX_CREDENTIAL_ATTEMPTS {
            return Err("credentials rejected by the remote".to_string());
        }
        if allowed.contains(CredentialType::SSH_KEY)
            && let Some(key) = &auth.ssh_key_file
        {
            let user = auth
                .username
                .as_deref()
                .or(username_from_url)
                .unwrap_or("git");
            let passphrase = auth.passphrase()?;
            return Cred::ssh_key(user, None, key, passphrase.as_deref())
                .map_err(|e| format!("ssh key {}: {}", key.display(), e.message()));
        }
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) && auth.has_token() {
            let token = auth.token()?.unwrap_or_default();
            let user = auth
                .username
                .as_deref()
                .or(username_from_url)
                .unwrap_or(DEFAULT_TOKEN_USERNAME);
            return Cred::userpass_plaintext(user, &token).map_err(|e| e.message().to_string());
        }
        if allowed.contains(CredentialType::USERNAME) {
            let user = auth
                .username
                .as_deref()
                .or(username_from_url)
                .unwrap_or("git");
            return Cred::username(user).map_err(|e| e.message().to_string());
        }
        Err("the remote asks for credentials, but none are configured".to_string())
    }

    fn fetch_error(&self, e: &git2::Error) -> SourceError {
        let transient = matches!(
            e.class(),
            ErrorClass::Net | ErrorClass::Http | ErrorClass::Ssh | ErrorClass::Os | ErrorClass::Ssl
        ) && e.code() != ErrorCode::Auth
            && e.code() != ErrorCode::Certificate;
        let mut message = scrub(e.message(), &self.config.url);
        if e.code() == ErrorCode::Certificate && e.class() == ErrorClass::Ssh {
            message.push_str(
                " (the SSH host key is not trusted: add it to ~/.ssh/known_hosts, e.g. with \
                 ssh-keyscan, or to the configured known_hosts file)",
            );
        }
        // libgit2 words a missing advertised ref (an empty repo's HEAD) as "not found".
        if e.class() == ErrorClass::Reference || message.contains("couldn't find remote ref") {
            return SourceError::RefNotFound {
                url: self.display_url(),
                reference: self.config.reference.clone(),
            };
        }
        SourceError::Fetch {
            url: self.display_url(),
            message,
            transient,
        }
    }
}

/// The local directory a path or `file://` URL names; `None` for network URLs.
fn local_path(raw: &str) -> Option<PathBuf> {
    if let Ok(u) = url::Url::parse(raw)
        && u.scheme().len() > 1
    {
        return if u.scheme() == "file" {
            u.to_file_path().ok()
        } else {
            None
        };
    }
    // scp-like `user@host:path` (a colon before any slash) is a network address.
    let colon = raw.find(':');
    let slash = raw.find('/');
    match (colon, slash) {
        (Some(c), Some(s)) if c < s => None,
        (Some(_), None) => None,
        _ => Some(PathBuf::from(raw)),
    }
}

/// The SSH port a URL connects to (22 unless `ssh://host:port/` says otherwise).
fn ssh_port(raw: &str) -> u16 {
    url::Url::parse(raw)
        .ok()
        .filter(|u| u.scheme() == "ssh")
        .and_then(|u| u.port())
        .unwrap_or(22)
}

/// Decide a host key against a `known_hosts` file: accept a listed key, refuse a host listed
/// only with other keys, and leave unlisted hosts to libgit2's own `~/.ssh/known_hosts` check.
/// Hashed entries, wildcards and markers (`@revoked`, `@cert-authority`) are not interpreted here
/// and fall through to libgit2 likewise.
fn check_known_host(
    file: &Path,
    host: &str,
    port: u16,
    key: &[u8],
) -> Result<git2::CertificateCheckStatus, git2::Error> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        git2::Error::from_str(&format!("cannot read known_hosts {}: {e}", file.display()))
    })?;
    let wanted = if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    let presented = base64::engine::general_purpose::STANDARD.encode(key);
    let mut listed = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(hosts), Some(_kind), Some(blob)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if !hosts.split(',').any(|h| h == wanted) {
            continue;
        }
        listed = true;
        if blob == presented {
            return Ok(git2::CertificateCheckStatus::CertificateOk);
        }
    }
    if listed {
        Err(git2::Error::new(
            ErrorCode::Certificate,
            ErrorClass::Ssh,
            format!(
                "host key for {wanted} does not match {} (possible man-in-the-middle)",
                file.display()
            ),
        ))
    } else {
        Ok(git2::CertificateCheckStatus::CertificatePassthrough)
    }
}

/// `message` with the raw URL (and its password, if any) replaced by the redacted URL.
fn scrub(message: &str, raw_url: &str) -> String {
    let mut out = message.replace(raw_url, &redact_url(raw_url));
    if let Ok(u) = url::Url::parse(raw_url) {
        if let Some(password) = u.password().filter(|p| !p.is_empty()) {
            out = out.replace(password, "***");
        } else if matches!(u.scheme(), "http" | "https") && !u.username().is_empty() {
            out = out.replace(u.username(), "***");
        }
    }
    out
}

/// List a commit's tree; blobs are read later, only those asked for. Symlinks and submodules are
/// skipped, as [`Revision::from_dir`] skips what is not a regular file.
pub(crate) fn read_revision(repo: &Repository, oid: Oid) -> Result<Revision, SourceError> {
    let read_err = |what: String| move |source| SourceError::Read { what, source };
    let commit = repo
        .find_commit(oid)
        .map_err(read_err(format!("commit {oid}")))?;
    let tree = commit.tree().map_err(read_err(format!("tree of {oid}")))?;
    let mut files = BTreeMap::new();
    tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() == Some(ObjectType::Blob) && entry.filemode() != 0o120000 {
            let name = String::from_utf8_lossy(entry.name_bytes());
            files.insert(format!("{dir}{name}"), entry.id());
        }
        TreeWalkResult::Ok
    })
    .map_err(read_err(format!("tree of {oid}")))?;
    let message = String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default()).into_owned();
    Ok(Revision::from_git(
        &oid.to_string(),
        message,
        repo.path(),
        files,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn movement_tells_forward_backward_rewritten_and_unrelated_apart() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::write(work.join("a"), "1").unwrap();
        let first = crate::source::init_repo_from_dir(&work, &work).unwrap();
        std::fs::write(work.join("a"), "2").unwrap();
        let second = crate::source::commit_all(&work, "two").unwrap();
        let repo = Repository::open(&work).unwrap();
        let parent = repo.find_commit(Oid::from_str(&first).unwrap()).unwrap();
        let tree = parent.tree().unwrap();
        let sig = git2::Signature::now("t", "t@localhost").unwrap();
        // A rewrite of `second` (same parent) and a commit with no history in common.
        let sibling = repo
            .commit(None, &sig, &sig, "amended", &tree, &[&parent])
            .unwrap();
        let orphan = repo.commit(None, &sig, &sig, "orphan", &tree, &[]).unwrap();
        repo.reference("refs/heads/sibling", sibling, true, "t")
            .unwrap();
        repo.reference("refs/heads/orphan", orphan, true, "t")
            .unwrap();
        let mut config = SourceConfig::new(work.display().to_string());
        config.reference = "main".into();
        let source = GitSource::open(config, &dir.path().join("mirror")).unwrap();
        source.fetch().unwrap();
        let (sibling, orphan) = (sibling.to_string(), orphan.to_string());
        let moved = |from: &str, to: &str| source.movement(from, to).unwrap();
        assert_eq!(moved(&first, &second), Movement::Forward);
        assert_eq!(moved(&second, &second), Movement::Same);
        assert_eq!(moved(&second, &first), Movement::Backward);
        assert_eq!(moved(&second, &sibling), Movement::Rewritten);
        assert_eq!(moved(&second, &orphan), Movement::Unrelated);
    }

    #[test]
    fn debug_of_auth_shows_no_paths_or_variable_names() {
        let auth = GitAuth {
            username: Some("bot".into()),
            token_file: Some(PathBuf::from("/secret/token-file")),
            token_env: Some("MY_TOKEN_VAR".into()),
            ssh_key_file: Some(PathBuf::from("/secret/id_ed25519")),
            ssh_key_passphrase_env: None,
        };
        let shown = format!("{auth:?}");
        assert!(!shown.contains("/secret"), "{shown}");
        assert!(!shown.contains("MY_TOKEN_VAR"), "{shown}");
        assert!(
            shown.contains("<set>") && shown.contains("<unset>"),
            "{shown}"
        );
    }

    #[test]
    fn debug_of_config_and_source_hides_a_token_in_the_url() {
        let config = SourceConfig::new("https://bot:s3cr3t@example.org/r.git");
        assert!(!format!("{config:?}").contains("s3cr3t"));
        let dir = tempfile::tempdir().unwrap();
        let source = GitSource::open(config, dir.path()).unwrap();
        let shown = format!("{source:?}");
        assert!(
            !shown.contains("s3cr3t") && shown.contains("example.org"),
            "{shown}"
        );
    }

    #[test]
    fn redacts_password_in_urls() {
        assert_eq!(
            redact_url("https://bot:s3cr3t@example.org/org/repo.git"),
            "https://bot:***@example.org/org/repo.git"
        );
        assert_eq!(
            redact_url("git@github.com:org/repo.git"),
            "git@github.com:org/repo.git"
        );
        assert_eq!(redact_url("/srv/repo"), "/srv/repo");
        assert_eq!(
            redact_url("https://ghp_tok3n@example.org/org/repo.git"),
            "https://***@example.org/org/repo.git"
        );
        assert_eq!(
            redact_url("ssh://git@example.org/org/repo.git"),
            "ssh://git@example.org/org/repo.git"
        );
        let msg = scrub(
            "failed to reach https://bot:s3cr3t@example.org/x (s3cr3t)",
            "https://bot:s3cr3t@example.org/x",
        );
        assert!(!msg.contains("s3cr3t"), "{msg}");
    }

    #[test]
    fn local_paths_are_told_from_network_urls() {
        assert_eq!(
            local_path("/srv/repo.git"),
            Some(PathBuf::from("/srv/repo.git"))
        );
        assert_eq!(local_path("./repo"), Some(PathBuf::from("./repo")));
        assert_eq!(local_path("file:///srv/r"), Some(PathBuf::from("/srv/r")));
        assert_eq!(local_path("git@github.com:org/repo.git"), None);
        assert_eq!(local_path("https://example.org/r.git"), None);
        assert_eq!(local_path("ssh://git@example.org:2222/r.git"), None);
        assert_eq!(ssh_port("ssh://git@example.org:2222/r.git"), 2222);
        assert_eq!(ssh_port("git@github.com:org/repo.git"), 22);
    }

    #[test]
    fn known_hosts_accepts_listed_key_refuses_other_key_and_passes_unlisted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("known_hosts");
        let key = b"\x00\x00\x00\x0bssh-ed25519-fake-key-bytes";
        std::fs::write(
            &file,
            format!(
                "# comment\n|1|hashed= ssh-ed25519 AAAA\n[127.0.0.1]:2222,other ssh-ed25519 {} c\ngithub.com ssh-ed25519 AAAAother\n",
                base64::engine::general_purpose::STANDARD.encode(key)
            ),
        )
        .unwrap();
        assert!(matches!(
            check_known_host(&file, "127.0.0.1", 2222, key),
            Ok(git2::CertificateCheckStatus::CertificateOk)
        ));
        // Same host on another port is not the listed entry.
        assert!(matches!(
            check_known_host(&file, "127.0.0.1", 22, key),
            Ok(git2::CertificateCheckStatus::CertificatePassthrough)
        ));
        let err = check_known_host(&file, "github.com", 22, key)
            .err()
            .unwrap();
        assert_eq!(err.code(), ErrorCode::Certificate);
        assert!(check_known_host(&dir.path().join("missing"), "x", 22, key).is_err());
    }

    fn credtype(cred: &Cred) -> u32 {
        cred.credtype()
    }

    #[test]
    fn credentials_pick_ssh_key_token_or_username() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "t0k").unwrap();
        let source = |auth: GitAuth| GitSource {
            config: SourceConfig {
                auth,
                ..SourceConfig::new("ssh://git@example.org/r.git")
            },
            mirror: dir.path().to_path_buf(),
            cancel: Arc::new(AtomicBool::new(false)),
            known_hosts: None,
        };
        let ssh = source(GitAuth {
            ssh_key_file: Some(dir.path().join("id_ed25519")),
            token_file: Some(token.clone()),
            ..GitAuth::default()
        });
        let all = CredentialType::SSH_KEY
            | CredentialType::USER_PASS_PLAINTEXT
            | CredentialType::USERNAME;
        let cred = ssh.credentials(Some("git"), all, 1).unwrap();
        assert_eq!(credtype(&cred), CredentialType::SSH_KEY.bits());
        let cred = ssh
            .credentials(None, CredentialType::USER_PASS_PLAINTEXT, 1)
            .unwrap();
        assert_eq!(credtype(&cred), CredentialType::USER_PASS_PLAINTEXT.bits());
        let cred = ssh.credentials(None, CredentialType::USERNAME, 1).unwrap();
        assert_eq!(credtype(&cred), CredentialType::USERNAME.bits());
        // libgit2 asks again after each rejection; we stop after a few attempts.
        let err = ssh
            .credentials(None, all, MAX_CREDENTIAL_ATTEMPTS + 1)
            .err()
            .unwrap();
        assert!(err.contains("rejected"), "{err}");

        let none = source(GitAuth::default());
        let err = none
            .credentials(None, CredentialType::USER_PASS_PLAINTEXT, 1)
            .err()
            .unwrap();
        assert!(err.contains("none are configured"), "{err}");

        let missing_passphrase = source(GitAuth {
            ssh_key_file: Some(dir.path().join("id_ed25519")),
            ssh_key_passphrase_env: Some("DROVER_TEST_SURELY_UNSET_VAR".into()),
            ..GitAuth::default()
        });
        let err = missing_passphrase
            .credentials(None, CredentialType::SSH_KEY, 1)
            .err()
            .unwrap();
        assert!(err.contains("DROVER_TEST_SURELY_UNSET_VAR"), "{err}");
    }

    #[test]
    fn token_from_file_is_trimmed_and_empty_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "  abc123\n").unwrap();
        let auth = GitAuth {
            token_file: Some(path.clone()),
            ..GitAuth::default()
        };
        assert_eq!(auth.token().unwrap().as_deref(), Some("abc123"));
        std::fs::write(&path, "\n").unwrap();
        let err = auth.token().unwrap_err();
        assert!(!err.contains("abc123"));
    }
}
