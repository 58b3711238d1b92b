//! Local repositories made by drover itself: `drover demo` seeds one from `desired-state/`, and
//! tests commit changes to it. Commits carry the fixed author `drover <drover@localhost>`.

use std::path::Path;

use git2::{IndexAddOption, Repository, RepositoryInitOptions, Signature};

use super::SourceError;

/// The branch a seeded repository starts on.
pub const SEED_BRANCH: &str = "main";

fn local_err(action: &str, path: &Path) -> impl FnOnce(git2::Error) -> SourceError {
    let action = action.to_string();
    let path = path.display().to_string();
    move |source| SourceError::Local {
        action,
        path,
        source,
    }
}

/// Create a Git repository (with a working copy, on branch `main`) at `repo`, copy the content of
/// `src` into it (skipping `.git`), and commit it. Returns the commit id. `src` may equal `repo`.
pub fn init_repo_from_dir(src: &Path, repo: &Path) -> Result<String, SourceError> {
    let mut options = RepositoryInitOptions::new();
    options.initial_head(SEED_BRANCH).mkpath(true);
    Repository::init_opts(repo, &options).map_err(local_err("init", repo))?;
    let same = match (src.canonicalize(), repo.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same {
        copy_dir(src, repo)?;
    }
    commit_all(repo, "Initial desired state")
}

/// Stage every change in `repo`'s working copy (new, modified and deleted files) and commit it on
/// the current branch. Commits even when nothing changed, so callers always get a new id.
pub fn commit_all(repo: &Path, message: &str) -> Result<String, SourceError> {
    let git = Repository::open(repo).map_err(local_err("open", repo))?;
    let mut index = git.index().map_err(local_err("read index", repo))?;
    index
        .add_all(["*"], IndexAddOption::DEFAULT, None)
        .map_err(local_err("add", repo))?;
    index
        .update_all(["*"], None)
        .map_err(local_err("stage deletions", repo))?;
    index.write().map_err(local_err("write index", repo))?;
    let tree_id = index.write_tree().map_err(local_err("write tree", repo))?;
    let tree = git
        .find_tree(tree_id)
        .map_err(local_err("find tree", repo))?;
    let signature =
        Signature::now("drover", "drover@localhost").map_err(local_err("sign", repo))?;
    let parent = match git.head() {
        Ok(head) => Some(
            head.peel_to_commit()
                .map_err(local_err("read HEAD", repo))?,
        ),
        // A fresh repository has an unborn HEAD: this is the first commit.
        Err(e)
            if e.code() == git2::ErrorCode::UnbornBranch
                || e.code() == git2::ErrorCode::NotFound =>
        {
            None
        }
        Err(e) => return Err(local_err("read HEAD", repo)(e)),
    };
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let oid = git
        .commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &parents,
        )
        .map_err(local_err("commit", repo))?;
    Ok(oid.to_string())
}

fn copy_dir(src: &Path, dst: &Path) -> Result<(), SourceError> {
    let io = |action: &str, path: &Path| {
        let action = action.to_string();
        let path = path.display().to_string();
        move |source| SourceError::Io {
            action,
            path,
            source,
        }
    };
    std::fs::create_dir_all(dst).map_err(io("create", dst))?;
    for entry in std::fs::read_dir(src).map_err(io("read", src))? {
        let entry = entry.map_err(io("read", src))?;
        if entry.file_name() == ".git" {
            continue;
        }
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let kind = entry.file_type().map_err(io("stat", &from))?;
        if kind.is_dir() {
            copy_dir(&from, &to)?;
        } else if kind.is_file() {
            std::fs::copy(&from, &to).map_err(io("copy", &from))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_and_commits_with_fixed_author() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("apps/web")).unwrap();
        std::fs::write(src.path().join("apps/web/app.yaml"), "name: web\n").unwrap();
        std::fs::create_dir_all(src.path().join(".git")).unwrap();
        std::fs::write(src.path().join(".git/junk"), "x").unwrap();
        let dst = tempfile::tempdir().unwrap();
        let repo_path = dst.path().join("repo");

        let first = init_repo_from_dir(src.path(), &repo_path).unwrap();
        let repo = Repository::open(&repo_path).unwrap();
        let head = repo.head().unwrap();
        assert_eq!(head.shorthand().unwrap(), SEED_BRANCH);
        let commit = head.peel_to_commit().unwrap();
        assert_eq!(commit.id().to_string(), first);
        assert_eq!(commit.author().name().unwrap(), "drover");
        assert_eq!(commit.author().email().unwrap(), "drover@localhost");
        let tree = commit.tree().unwrap();
        assert!(tree.get_path(Path::new("apps/web/app.yaml")).is_ok());
        assert!(tree.get_path(Path::new(".git/junk")).is_err());

        // Deletion and addition are both staged.
        std::fs::remove_file(repo_path.join("apps/web/app.yaml")).unwrap();
        std::fs::write(repo_path.join("new.txt"), "hi").unwrap();
        let second = commit_all(&repo_path, "change").unwrap();
        let commit = repo.find_commit(second.parse().unwrap()).unwrap();
        assert_eq!(commit.parent_id(0).unwrap().to_string(), first);
        let tree = commit.tree().unwrap();
        assert!(tree.get_path(Path::new("apps/web/app.yaml")).is_err());
        assert!(tree.get_path(Path::new("new.txt")).is_ok());
    }

    #[test]
    fn commit_all_outside_a_repo_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = commit_all(dir.path(), "x").unwrap_err();
        assert!(matches!(err, SourceError::Local { .. }), "{err}");
    }
}
