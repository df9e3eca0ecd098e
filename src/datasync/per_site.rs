//! One value per site (an account's region), built on first use and kept: the DataSync and S3
//! clients with their call budgets. Bounded by the sites served: the caller builds one only
//! for a site `Accounts::reach` allowed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::model::Site;

pub struct PerSite<T>(RwLock<HashMap<Site, Arc<T>>>);

impl<T> Default for PerSite<T> {
    fn default() -> Self {
        PerSite(RwLock::default())
    }
}

impl<T> PerSite<T> {
    /// The value of `site`, made by `build` the first time it is asked for.
    pub fn get_or_build(&self, site: &Site, build: impl FnOnce() -> T) -> Arc<T> {
        if let Some(value) = self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).get(site) {
            return value.clone();
        }
        let mut values = self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        values.entry(site.clone()).or_insert_with(|| Arc::new(build())).clone()
    }
}
