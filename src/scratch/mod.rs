//! Scratch PostgreSQL servers: made for one run (a rehearsal, a replay, a test binary, a
//! benchmark) and deleted whole afterwards. Either a cluster from the local server binaries
//! ([`local`]) or a container from an image, started through testcontainers ([`container`]).

pub mod container;
pub mod local;

pub use container::{ContainerError, ContainerServer};
pub use local::{ClusterError, TempCluster};

/// A scratch server of either kind; dropping it stops and deletes it.
#[derive(Debug)]
pub enum Scratch {
    Local(TempCluster),
    // Boxed: the testcontainers handle is several times the size of a local cluster's.
    Container(Box<ContainerServer>),
}

/// Why a scratch server could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScratchError {
    #[error(transparent)]
    Local(#[from] ClusterError),
    #[error(transparent)]
    Container(#[from] ContainerError),
}

impl Scratch {
    /// Starts a server with `settings` (postgresql.conf lines such as
    /// `shared_preload_libraries = 'pg_stat_statements'`): in a container from `image` when
    /// one is given, else from the local binaries.
    pub fn start(image: Option<&str>, settings: &[&str]) -> Result<Scratch, ScratchError> {
        Ok(match image {
            Some(image) => Scratch::Container(Box::new(ContainerServer::start(image, settings)?)),
            None => Scratch::Local(TempCluster::start(settings)?),
        })
    }

    /// A URL for `database` as the superuser `postgres` (trust authentication on 127.0.0.1).
    pub fn url(&self, database: &str) -> String {
        match self {
            Scratch::Local(c) => c.url(database),
            Scratch::Container(c) => c.url(database),
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            Scratch::Local(c) => c.port(),
            Scratch::Container(c) => c.port(),
        }
    }
}
