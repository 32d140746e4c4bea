//! [`Quotas`]: the accounts of a layer's clients, one per client key and
//! quota, forgotten once their window has ended and no download holds them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::time::Instant;

use super::Quota;
use super::account::Account;
use super::window::Clock;
use crate::ClientKey;
#[cfg(feature = "redis")]
use crate::throttle::redis::Store;

/// The smallest table that is swept.
const SWEEP_FROM: usize = 64;

/// The accounts of a layer (and its clones): one per client key and quota, so
/// a client's downloads under one quota share it and a request under another
/// quota (another tier) counts apart, as client rates do.
///
/// A client's spending must outlive its downloads (a client that downloads
/// its quota and comes back must find it spent), so accounts are kept until
/// their window ends, and then as long as a download holds them. The table is
/// swept whenever it has doubled since the last sweep: its size follows the
/// clients seen in the current window (of each quota), not all clients ever.
#[derive(Debug)]
pub(crate) struct Quotas {
    clock: Clock,
    table: Mutex<Table>,
    #[cfg(feature = "redis")]
    store: Option<Arc<dyn Store>>,
}

#[derive(Debug, Default)]
struct Table {
    accounts: HashMap<(ClientKey, Quota), Arc<Account>>,
    sweep_at: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Self::new(
            Clock::default(),
            #[cfg(feature = "redis")]
            None,
        )
    }
}

impl Quotas {
    pub(crate) fn new(
        clock: Clock,
        #[cfg(feature = "redis")] store: Option<Arc<dyn Store>>,
    ) -> Self {
        Self {
            clock,
            table: Mutex::new(Table {
                accounts: HashMap::new(),
                sweep_at: SWEEP_FROM,
            }),
            #[cfg(feature = "redis")]
            store,
        }
    }

    /// The account of `client` under `quota`.
    pub(crate) fn account(&self, client: &ClientKey, quota: Quota) -> Arc<Account> {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(account) = table.accounts.get(&(client.clone(), quota)) {
            return account.clone();
        }
        if table.accounts.len() >= table.sweep_at {
            let now = Instant::now();
            table
                .accounts
                .retain(|_, account| Arc::strong_count(account) > 1 || !account.ended(now));
            table.sweep_at = (table.accounts.len() * 2).max(SWEEP_FROM);
        }
        #[cfg(feature = "redis")]
        let shared = self.store.clone().map(|store| {
            let key = format!("quota:{client}@{}/{}", quota.bytes(), quota.period_ms());
            super::shared::Shared::new(store, key)
        });
        let account = Arc::new(Account::new(
            quota,
            self.clock,
            #[cfg(feature = "redis")]
            shared,
        ));
        table
            .accounts
            .insert((client.clone(), quota), account.clone());
        account
    }

    /// How many accounts the table holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .accounts
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn quotas() -> Quotas {
        Quotas::new(
            Clock::at(Duration::ZERO),
            #[cfg(feature = "redis")]
            None,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_finds_its_account_again_and_tiers_count_apart() {
        let quotas = quotas();
        let daily = Quota::new(100, Duration::from_secs(86_400));
        let paid = Quota::new(1000, Duration::from_secs(86_400));
        let client = ClientKey::from("user-1");
        quotas.account(&client, daily).charge(60);
        drop(quotas.account(&client, paid));
        assert_eq!(quotas.account(&client, daily).remaining(), 40);
        assert_eq!(quotas.account(&client, paid).remaining(), 1000);
        let other = ClientKey::from("user-2");
        assert_eq!(quotas.account(&other, daily).remaining(), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn accounts_are_forgotten_after_their_window_unless_a_download_holds_them() {
        let quotas = quotas();
        let minute = Quota::new(100, Duration::from_secs(60));
        let held = quotas.account(&ClientKey::from("downloading"), minute);
        held.charge(10);
        for n in 0..SWEEP_FROM - 1 {
            quotas
                .account(&ClientKey::from(n.to_string()), minute)
                .charge(1);
        }
        assert_eq!(quotas.len(), SWEEP_FROM);
        // Within the window, nothing is forgotten: the table grows.
        quotas.account(&ClientKey::from("late"), minute);
        assert_eq!(quotas.len(), SWEEP_FROM + 1);
        tokio::time::advance(Duration::from_secs(60)).await;
        for n in 0..SWEEP_FROM {
            quotas.account(&ClientKey::from(format!("next-{n}")), minute);
        }
        // The sweep forgot the ended accounts but the held one.
        assert!(quotas.len() <= SWEEP_FROM + 1, "{}", quotas.len());
        assert!(Arc::ptr_eq(
            &held,
            &quotas.account(&ClientKey::from("downloading"), minute)
        ));
    }
}
