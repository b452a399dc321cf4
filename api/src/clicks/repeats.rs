//! Repeated clicks (spec, "Keys, limits and abuse"): a click by a visitor who clicked the
//! same link less than an hour before, and was counted then, is a repeat. It is stored and
//! flagged, counted once by default, and sent to no webhook.
//!
//! Decided in Postgres, so every api instance agrees: one row per (link, visitor) holds
//! when its last counted click was; a click inside that hour leaves the row as it is and
//! is a repeat, any other click is counted and starts a new hour (as Dub's window does).
//! Each instance remembers the windows Postgres told it of, until they close, so a
//! visitor's further clicks in an open window (a bot hammering one link: the case that
//! matters) are decided without a round trip, and the same way Postgres would.
//! The redirect never waits for it: it runs in the click's background task, before the
//! click goes to the stream. If Postgres cannot answer, the click is counted (a visitor's
//! click is never lost from the counts for a database hiccup).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;

pub struct RepeatClicks {
    pool: PgPool,
    /// How long after a counted click the same visitor's clicks on the link are repeats
    /// (`CLICK_REPEAT_WINDOW_SECS`, an hour; zero: every click counts).
    window: Duration,
    /// Open windows this instance knows of: (link, visitor) → when the window's counted
    /// click was.
    open: moka::sync::Cache<(String, String), DateTime<Utc>>,
}

impl RepeatClicks {
    pub fn new(pool: PgPool, window: Duration) -> Self {
        Self {
            pool,
            window,
            open: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(window.max(Duration::from_secs(1)))
                .build(),
        }
    }

    /// Whether `visitor`'s click on `short_code` at `at` is a repeat.
    pub async fn is_repeat(
        &self,
        short_code: &str,
        visitor: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, sqlx::Error> {
        if self.window.is_zero() {
            return Ok(false);
        }
        let window = TimeDelta::from_std(self.window).unwrap_or(TimeDelta::hours(1));
        let key = (short_code.to_owned(), visitor.to_owned());
        if let Some(counted_at) = self.open.get(&key) {
            if counted_at <= at && at < counted_at + window {
                return Ok(true);
            }
        }
        // The window this click counted in (a new one), or the open one it repeats: read
        // before the statement's own change (a data-modifying CTE's effect is not visible
        // to its query).
        let (counted, existing): (Option<DateTime<Utc>>, Option<DateTime<Utc>>) = sqlx::query_as(
            "WITH counted AS ( \
               INSERT INTO click_windows AS w (short_code, visitor, counted_at) VALUES ($1, $2, $3) \
               ON CONFLICT (short_code, visitor) DO UPDATE SET counted_at = EXCLUDED.counted_at \
                 WHERE w.counted_at <= EXCLUDED.counted_at - make_interval(secs => $4) \
               RETURNING counted_at) \
             SELECT (SELECT counted_at FROM counted), \
                    (SELECT counted_at FROM click_windows WHERE short_code = $1 AND visitor = $2)",
        )
        .bind(short_code)
        .bind(visitor)
        .bind(at)
        .bind(self.window.as_secs_f64())
        .fetch_one(&self.pool)
        .await?;
        match (counted, existing) {
            (Some(counted_at), _) => {
                self.open.insert(key, counted_at);
                Ok(false)
            }
            (None, Some(counted_at)) => {
                self.open.insert(key, counted_at);
                Ok(true)
            }
            // Not inserted, and not in the snapshot the statement began with: another
            // instance's check inserted the window's row meanwhile (ours waited on it, then
            // found it). A new statement sees it.
            (None, None) => {
                let existing: Option<DateTime<Utc>> = sqlx::query_scalar(
                    "SELECT counted_at FROM click_windows WHERE short_code = $1 AND visitor = $2",
                )
                .bind(short_code)
                .bind(visitor)
                .fetch_optional(&self.pool)
                .await?;
                match existing {
                    // As the update's condition decided: a window counted less than one
                    // window before this click (or after it: the racing click won).
                    Some(counted_at) if at < counted_at + window => {
                        self.open.insert(key, counted_at);
                        Ok(true)
                    }
                    // Swept or outside it meanwhile: counted, as on any doubt.
                    _ => Ok(false),
                }
            }
        }
    }

    /// Forgets windows that have closed (run now and then).
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query(
            "DELETE FROM click_windows WHERE counted_at <= $1 - make_interval(secs => $2)",
        )
        .bind(now)
        .bind(self.window.as_secs_f64())
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
