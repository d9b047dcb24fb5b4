//! [`Command`]: a process builder, std's own inside, whose spawned
//! [`Child`] waits cooperatively.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::Path;
use std::process::{self, CommandArgs, CommandEnvs, ExitStatus, Output, Stdio};

use super::child::Child;

/// A process builder with the surface of `std::process::Command` (it wraps
/// one); [`spawn`](Command::spawn), [`output`](Command::output) and
/// [`status`](Command::status) park only the calling greenlet while they
/// wait. Unix-only settings (`CommandExt`: uid, `process_group`,
/// `pre_exec`, ...) are reached through [`as_std_mut`](Command::as_std_mut).
///
/// ```
/// use greenhub::process::Command;
///
/// greenhub::run(|| {
///     let output = Command::new("echo").arg("hello").output().unwrap();
///     assert!(output.status.success());
///     assert_eq!(output.stdout, b"hello\n");
/// });
/// ```
pub struct Command {
    inner: process::Command,
    /// Whether stdin, stdout and stderr were set through this type, so that
    /// [`output`](Command::output) knows where its own defaults apply.
    stdio_set: [bool; 3],
}

impl Command {
    /// A command that runs `program` (looked up in `PATH` if it has no
    /// slash), with no arguments, the parent's environment and working
    /// directory, and stdio inherited by `spawn` and `status`.
    ///
    /// ```
    /// let status = greenhub::process::Command::new("true").status().unwrap();
    /// assert!(status.success());
    /// ```
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command::from(process::Command::new(program))
    }

    /// Adds one argument.
    ///
    /// ```
    /// let out = greenhub::process::Command::new("echo").arg("a b").output().unwrap();
    /// assert_eq!(out.stdout, b"a b\n");
    /// ```
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.inner.arg(arg);
        self
    }

    /// Adds several arguments.
    ///
    /// ```
    /// let out = greenhub::process::Command::new("echo").args(["a", "b"]).output().unwrap();
    /// assert_eq!(out.stdout, b"a b\n");
    /// ```
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Sets an environment variable for the child.
    ///
    /// ```
    /// let out = greenhub::process::Command::new("sh")
    ///     .args(["-c", "echo $GREETING"])
    ///     .env("GREETING", "hi")
    ///     .output()
    ///     .unwrap();
    /// assert_eq!(out.stdout, b"hi\n");
    /// ```
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.inner.env(key, val);
        self
    }

    /// Sets several environment variables for the child.
    ///
    /// ```
    /// let out = greenhub::process::Command::new("sh")
    ///     .args(["-c", "echo $A$B"])
    ///     .envs([("A", "1"), ("B", "2")])
    ///     .output()
    ///     .unwrap();
    /// assert_eq!(out.stdout, b"12\n");
    /// ```
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    ///
    /// ```
    /// let out = greenhub::process::Command::new("sh")
    ///     .args(["-c", "echo ${HOME-unset}"])
    ///     .env_remove("HOME")
    ///     .output()
    ///     .unwrap();
    /// assert_eq!(out.stdout, b"unset\n");
    /// ```
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.inner.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (plus what
    /// [`env`](Command::env) adds afterwards).
    ///
    /// ```
    /// let out = greenhub::process::Command::new("/bin/sh")
    ///     .args(["-c", "echo ${HOME-unset}"])
    ///     .env_clear()
    ///     .output()
    ///     .unwrap();
    /// assert_eq!(out.stdout, b"unset\n");
    /// ```
    pub fn env_clear(&mut self) -> &mut Command {
        self.inner.env_clear();
        self
    }

    /// Sets the child's working directory.
    ///
    /// ```
    /// let out = greenhub::process::Command::new("pwd").current_dir("/").output().unwrap();
    /// assert_eq!(out.stdout, b"/\n");
    /// ```
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.inner.current_dir(dir);
        self
    }

    /// Sets the child's stdin: [`Stdio::piped`] gives a
    /// [`Child::stdin`] to write to.
    ///
    /// ```
    /// use greenhub::process::{Command, Stdio};
    ///
    /// let mut child = Command::new("cat").stdin(Stdio::null()).spawn().unwrap();
    /// assert!(child.wait().unwrap().success()); // end of file at once
    /// ```
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stdin(cfg);
        self.stdio_set[0] = true;
        self
    }

    /// Sets the child's stdout: [`Stdio::piped`] gives a
    /// [`Child::stdout`] to read from.
    ///
    /// ```
    /// use greenhub::process::{Command, Stdio};
    ///
    /// let out = Command::new("echo").arg("lost").stdout(Stdio::null()).output().unwrap();
    /// assert!(out.stdout.is_empty());
    /// ```
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stdout(cfg);
        self.stdio_set[1] = true;
        self
    }

    /// Sets the child's stderr: [`Stdio::piped`] gives a
    /// [`Child::stderr`] to read from.
    ///
    /// ```
    /// use greenhub::process::{Command, Stdio};
    ///
    /// let out = Command::new("sh")
    ///     .args(["-c", "echo lost >&2"])
    ///     .stderr(Stdio::null())
    ///     .output()
    ///     .unwrap();
    /// assert!(out.stderr.is_empty());
    /// ```
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stderr(cfg);
        self.stdio_set[2] = true;
        self
    }

    /// Starts the child. Its piped streams become the cooperative pipes of
    /// the [`Child`].
    ///
    /// The fork and exec themselves block the calling thread briefly (std
    /// waits for the exec to succeed or fail); every later wait parks only
    /// the calling greenlet.
    ///
    /// # Errors
    ///
    /// As `std::process::Command::spawn`: `ErrorKind::NotFound` for a
    /// program that does not exist, `PermissionDenied` for one that cannot
    /// be executed, ...
    ///
    /// ```
    /// use greenhub::process::Command;
    ///
    /// greenhub::run(|| {
    ///     let mut child = Command::new("true").spawn().unwrap();
    ///     assert!(child.wait().unwrap().success());
    ///     let err = Command::new("/no/such/program").spawn().unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// });
    /// ```
    pub fn spawn(&mut self) -> io::Result<Child> {
        Child::from_std(self.inner.spawn()?)
    }

    /// Runs the child to completion and collects its output, like std:
    /// unless set otherwise, stdout and stderr are piped (and captured) and
    /// stdin is null. Stdio set on a `std::process::Command` before it was
    /// converted with `From` (or through [`as_std_mut`](Command::as_std_mut))
    /// does not count as set here.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Command::spawn) and [`Child::wait_with_output`].
    ///
    /// ```
    /// use greenhub::process::Command;
    ///
    /// greenhub::run(|| {
    ///     let out = Command::new("sh").args(["-c", "echo 1; echo 2 >&2; exit 4"]).output().unwrap();
    ///     assert_eq!(out.status.code(), Some(4));
    ///     assert_eq!((&out.stdout[..], &out.stderr[..]), (&b"1\n"[..], &b"2\n"[..]));
    /// });
    /// ```
    pub fn output(&mut self) -> io::Result<Output> {
        let [stdin_set, stdout_set, stderr_set] = self.stdio_set;
        if !stdin_set {
            self.inner.stdin(Stdio::null());
        }
        if !stdout_set {
            self.inner.stdout(Stdio::piped());
        }
        if !stderr_set {
            self.inner.stderr(Stdio::piped());
        }
        let spawned = self.inner.spawn();
        // Back to the default of `spawn` and `status`.
        if !stdin_set {
            self.inner.stdin(Stdio::inherit());
        }
        if !stdout_set {
            self.inner.stdout(Stdio::inherit());
        }
        if !stderr_set {
            self.inner.stderr(Stdio::inherit());
        }
        Child::from_std(spawned?)?.wait_with_output()
    }

    /// Runs the child to completion and returns its exit status, like std:
    /// stdio is inherited unless set otherwise.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Command::spawn) and [`Child::wait`].
    ///
    /// ```
    /// use greenhub::process::Command;
    ///
    /// greenhub::run(|| {
    ///     assert_eq!(Command::new("false").status().unwrap().code(), Some(1));
    /// });
    /// ```
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }

    /// The program, as given to [`new`](Command::new).
    ///
    /// ```
    /// assert_eq!(greenhub::process::Command::new("ls").get_program(), "ls");
    /// ```
    pub fn get_program(&self) -> &OsStr {
        self.inner.get_program()
    }

    /// The arguments (without the program).
    ///
    /// ```
    /// let mut cmd = greenhub::process::Command::new("ls");
    /// cmd.args(["-l", "/"]);
    /// assert_eq!(cmd.get_args().collect::<Vec<_>>(), ["-l", "/"]);
    /// ```
    pub fn get_args(&self) -> CommandArgs<'_> {
        self.inner.get_args()
    }

    /// The environment changes: `(key, Some(value))` for a variable set,
    /// `(key, None)` for one removed.
    ///
    /// ```
    /// use std::ffi::OsStr;
    ///
    /// let mut cmd = greenhub::process::Command::new("ls");
    /// cmd.env("A", "1").env_remove("B");
    /// let envs: Vec<_> = cmd.get_envs().collect();
    /// assert_eq!(envs, [(OsStr::new("A"), Some(OsStr::new("1"))), (OsStr::new("B"), None)]);
    /// ```
    pub fn get_envs(&self) -> CommandEnvs<'_> {
        self.inner.get_envs()
    }

    /// The working directory set with [`current_dir`](Command::current_dir).
    ///
    /// ```
    /// let mut cmd = greenhub::process::Command::new("ls");
    /// assert_eq!(cmd.get_current_dir(), None);
    /// cmd.current_dir("/tmp");
    /// assert_eq!(cmd.get_current_dir(), Some(std::path::Path::new("/tmp")));
    /// ```
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.inner.get_current_dir()
    }

    /// The `std::process::Command` inside.
    ///
    /// ```
    /// let cmd = greenhub::process::Command::new("ls");
    /// assert_eq!(cmd.as_std().get_program(), "ls");
    /// ```
    pub fn as_std(&self) -> &process::Command {
        &self.inner
    }

    /// The `std::process::Command` inside, for settings this type does not
    /// mirror, such as `std::os::unix::process::CommandExt`'s.
    ///
    /// ```
    /// use std::os::unix::process::CommandExt;
    /// use greenhub::process::Command;
    ///
    /// let mut cmd = Command::new("true");
    /// cmd.as_std_mut().process_group(0);
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn as_std_mut(&mut self) -> &mut process::Command {
        &mut self.inner
    }
}

/// Keeps everything set on the std command; see [`Command::output`] for
/// its stdio.
impl From<process::Command> for Command {
    fn from(inner: process::Command) -> Command {
        Command {
            inner,
            stdio_set: [false; 3],
        }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}
