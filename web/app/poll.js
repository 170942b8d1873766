// Live updates by polling (HTTP APIs cannot stream): backoff while nothing changes, a fast
// start again when something does, and no requests at all while the tab is hidden.

// `step` returns {changed, done}; a thrown error goes to `onError` and polling backs off.
export function poll(step, { min = 300, max = 5000, factor = 1.6, onError = () => {} } = {}) {
  let delay = min;
  let timer = null;
  let stopped = false;
  let running = false;
  let woken = false;

  async function tick() {
    timer = null;
    if (stopped || running) return;
    if (document.hidden) return; // visibilitychange starts it again
    running = true;
    woken = false;
    let outcome;
    try {
      outcome = await step();
    } catch (error) {
      outcome = {};
      onError(error);
    } finally {
      running = false;
    }
    if (stopped || (outcome && outcome.done && !woken)) {
      stop();
      return;
    }
    delay = woken || (outcome && outcome.changed) ? min : Math.min(max, delay * factor);
    timer = setTimeout(tick, delay);
  }

  function onVisibility() {
    if (document.hidden) {
      clearTimeout(timer);
      timer = null;
    } else if (!stopped && !timer && !running) {
      delay = min;
      tick();
    }
  }

  function stop() {
    stopped = true;
    clearTimeout(timer);
    document.removeEventListener("visibilitychange", onVisibility);
  }

  document.addEventListener("visibilitychange", onVisibility);
  tick();
  return {
    stop,
    // Something happened here (a submit): poll soon, even if polling had finished.
    wake() {
      if (stopped) {
        stopped = false;
        document.addEventListener("visibilitychange", onVisibility);
      }
      delay = min;
      woken = true;
      if (running) return; // the poll in flight schedules the next one soon
      clearTimeout(timer);
      timer = null;
      tick();
    },
  };
}
