//! Messaging layer ([MS-PST] §2.4): store, folders, messages.

pub mod folder;
pub mod message;
pub mod props;
pub mod store;
