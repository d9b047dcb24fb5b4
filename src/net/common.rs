//! The methods every greenhub socket type shares with its std twin, written
//! once: `try_clone`, `set_nonblocking`, `take_error` and `into_std` for all
//! of them, read and write timeouts for the ones std gives timeouts, and the
//! `Read`/`Write` impls (for `T` and `&T`) of the stream types. Each type is
//! `struct T { io: Evented<Std>, .. }` with a `from_evented` constructor.
//!
//! The doc examples are generated too: `$setup` is a line of code that binds
//! a socket of the type to `s`.

/// `try_clone`, `set_nonblocking`, `take_error`, `into_std`.
macro_rules! socket_basics {
    ($t:ident, $std:ty, $setup:literal) => {
        impl $t {
            /// A new handle to the same socket (a `dup`), usable from another
            /// greenlet, on any hub, or thread. Its timeouts and
            /// `set_nonblocking` setting are copied from this handle at the
            /// time of the call.
            ///
            #[doc = concat!("```\n# greenhub::run(|| {\n", $setup, "\nlet s2 = s.try_clone().unwrap();\nassert_eq!(s.take_error().unwrap().is_none(), s2.take_error().unwrap().is_none());\n# });\n```")]
            pub fn try_clone(&self) -> std::io::Result<$t> {
                let inner = self.io.get_ref().try_clone()?;
                let clone = <$t>::from_evented(crate::io::evented::Evented::new(inner));
                clone.io.timeouts().copy_from(self.io.timeouts());
                Ok(clone)
            }

            /// With `true`, calls that would block return `WouldBlock` at once
            /// instead of parking (the fd itself is always non-blocking).
            ///
            #[doc = concat!("```\n# greenhub::run(|| {\n", $setup, "\ns.set_nonblocking(true).unwrap();\ns.set_nonblocking(false).unwrap();\n# });\n```")]
            pub fn set_nonblocking(&self, nonblocking: bool) -> std::io::Result<()> {
                self.io.timeouts().set_nonblocking(nonblocking);
                Ok(())
            }

            /// Takes the pending socket error (`SO_ERROR`).
            ///
            #[doc = concat!("```\n# greenhub::run(|| {\n", $setup, "\nassert!(s.take_error().unwrap().is_none());\n# });\n```")]
            pub fn take_error(&self) -> std::io::Result<Option<std::io::Error>> {
                self.io.get_ref().take_error()
            }

            /// Gives back the std socket, still in non-blocking mode (std's
            /// `set_nonblocking(false)` turns that off).
            ///
            #[doc = concat!("```\n# greenhub::run(|| {\n", $setup, "\nlet std = s.into_std();\nstd.set_nonblocking(false).unwrap();\n# });\n```")]
            pub fn into_std(self) -> $std {
                self.io.into_inner()
            }
        }
    };
}

/// `set_read_timeout`, `set_write_timeout`, `read_timeout`, `write_timeout`.
macro_rules! socket_timeouts {
    ($t:ident, $setup:literal) => {
        impl $t {
            /// Makes receives that wait longer than `dur` fail with
            /// `WouldBlock`, as a std socket with `SO_RCVTIMEO` does; `None`
            /// waits forever.
            ///
            /// # Errors
            ///
            /// `InvalidInput` for `Some(Duration::ZERO)`, like std.
            ///
            #[doc = concat!("```\n# use std::time::Duration;\n# greenhub::run(|| {\n", $setup, "\ns.set_read_timeout(Some(Duration::from_millis(5))).unwrap();\nassert_eq!(s.read_timeout().unwrap(), Some(Duration::from_millis(5)));\nassert!(s.set_read_timeout(Some(Duration::ZERO)).is_err());\n# });\n```")]
            pub fn set_read_timeout(&self, dur: Option<std::time::Duration>) -> std::io::Result<()> {
                self.io.timeouts().set_read(dur)
            }

            /// As [`set_read_timeout`](Self::set_read_timeout), for sends.
            ///
            /// # Errors
            ///
            /// `InvalidInput` for `Some(Duration::ZERO)`.
            ///
            #[doc = concat!("```\n# use std::time::Duration;\n# greenhub::run(|| {\n", $setup, "\ns.set_write_timeout(Some(Duration::from_secs(1))).unwrap();\nassert_eq!(s.write_timeout().unwrap(), Some(Duration::from_secs(1)));\n# });\n```")]
            pub fn set_write_timeout(&self, dur: Option<std::time::Duration>) -> std::io::Result<()> {
                self.io.timeouts().set_write(dur)
            }

            /// The read timeout.
            ///
            #[doc = concat!("```\n# greenhub::run(|| {\n", $setup, "\nassert_eq!(s.read_timeout().unwrap(), None);\n# });\n```")]
            pub fn read_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.io.timeouts().read())
            }

            /// The write timeout.
            ///
            #[doc = concat!("```\n# greenhub::run(|| {\n", $setup, "\nassert_eq!(s.write_timeout().unwrap(), None);\n# });\n```")]
            pub fn write_timeout(&self) -> std::io::Result<Option<std::time::Duration>> {
                Ok(self.io.timeouts().write())
            }
        }
    };
}

/// `Read` and `Write` for a stream type and for references to it, so that
/// one greenlet can read while another writes.
macro_rules! stream_read_write {
    ($t:ident) => {
        impl std::io::Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                (&*self).read(buf)
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                (&*self).read_vectored(bufs)
            }
        }

        impl std::io::Read for &$t {
            #[inline]
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.io.read_with(|mut s| std::io::Read::read(&mut s, buf))
            }

            fn read_vectored(
                &mut self,
                bufs: &mut [std::io::IoSliceMut<'_>],
            ) -> std::io::Result<usize> {
                self.io
                    .read_with(|mut s| std::io::Read::read_vectored(&mut s, bufs))
            }
        }

        impl std::io::Write for $t {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                (&*self).write(buf)
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                (&*self).write_vectored(bufs)
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }

        impl std::io::Write for &$t {
            #[inline]
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.io
                    .write_with(|mut s| std::io::Write::write(&mut s, buf))
            }

            fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
                self.io
                    .write_with(|mut s| std::io::Write::write_vectored(&mut s, bufs))
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
    };
}

pub(crate) use {socket_basics, socket_timeouts, stream_read_write};
