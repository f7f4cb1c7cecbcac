/** Every long-lived component starts and stops; `stop()` is idempotent. */
export interface Lifecycle {
  start(): Promise<void>;
  stop(): Promise<void>;
}
