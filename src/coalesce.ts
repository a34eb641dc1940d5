export type Coalesced = {
  /** Runs `work` now, or once more after the run under way; resolves when the runs it asked for are over. */
  (): Promise<void>;
  /** Resolves when no run is under way. */
  idle(): Promise<void>;
};

/**
 * `work` one run at a time. Calls made while a run is under way ask for one more run after it (however
 * many came), so every call is followed by a run that started after it, and bursts cost one run, not one
 * each. `work` handles its own errors.
 */
export function coalesce(work: () => Promise<void>): Coalesced {
  let running: Promise<void> | null = null;
  let again = false;
  const run = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await work();
      } while (again);
    })().finally(() => {
      running = null;
    });
    return running;
  };
  return Object.assign(run, { idle: async () => void (await running) });
}
