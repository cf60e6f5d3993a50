"""Device situations for the hub's model (issue 18, part 3): what the hub
knows of one device's sensor over a window (the anomaly functions' values,
sm/anomaly_functions.h), rendered as one line of text, and the action an
operator's runbook prescribes for it, with a one-line rationale.

The runbook (`expert`) is the label: it weighs several values together
(a temperature still below the alarm but rising fast, a pressure that
drifted without a spike, a vibration spike on a device that is already
hot). `rules_baseline` is what the same operator writes as the hub's
single-threshold rules (ai/rules.h), the baseline the model is measured
against.

The C++ renderer (ai/situation.h) writes the same text; situation_test
checks that both agree on the examples this module writes.
"""

import random

ACTIONS = ["none", "cool", "throttle", "shutdown", "recalibrate", "inspect",
           "ping"]
KINDS = ["pump", "fan", "chiller", "valve", "compressor"]
SENSORS = {
    # sensor: (nominal mean, spread, unit)
    "temperature": (60.0, 8.0, "C"),
    "pressure": (4.0, 0.4, "bar"),
    "vibration": (2.0, 0.5, "mm/s"),
    "flow": (30.0, 4.0, "l/min"),
}


def render(s):
    """One line: device, sensor, last value, mean, z-score, rate per
    minute, stuck or not, the longest gap in seconds."""
    return ("%s %s %.1f%s mean %.1f z %.1f rate %+.1f/min stuck %s gap %ds" %
            (s["device"], s["sensor"], s["value"], SENSORS[s["sensor"]][2],
             s["mean"], s["z"], s["rate"], "yes" if s["stuck"] else "no",
             s["gap"]))


def expert(s):
    """The runbook's action and why."""
    sensor, v, z, rate = s["sensor"], s["value"], s["z"], s["rate"]
    if s["gap"] > 60:
        return "ping", "no readings for %ds" % s["gap"]
    if s["stuck"]:
        return "recalibrate", "sensor stuck at %.1f" % v
    if sensor == "temperature":
        if v > 95:
            return "shutdown", "overheating at %.1f" % v
        if v > 90 or (v > 80 and rate > 1.5):
            return "cool", "hot and rising %+.1f/min" % rate
    if sensor == "vibration":
        if z > 4 and rate > 0:
            return "shutdown", "vibration spike z %.1f" % z
        if z > 2.5:
            return "inspect", "vibration high z %.1f" % z
    if sensor == "pressure":
        if z > 3:
            return "throttle", "pressure spike z %.1f" % z
        if abs(s["mean"] - SENSORS["pressure"][0]) > 0.8 and abs(rate) < 0.5:
            return "inspect", "pressure drifted to %.1f" % s["mean"]
    if sensor == "flow" and v < 15 and rate < 0:
        return "inspect", "flow falling to %.1f" % v
    return "none", "within normal range"


def rules_baseline(s):
    """The hub's single-threshold rules an operator would write."""
    if s["gap"] > 60:
        return "ping"
    if s["stuck"]:
        return "recalibrate"
    if s["sensor"] == "temperature" and s["value"] > 90:
        return "cool"
    if s["sensor"] == "vibration" and s["z"] > 4:
        return "shutdown"
    if s["sensor"] == "pressure" and s["z"] > 3:
        return "throttle"
    return "none"


def situation(rng):
    """A random situation, with the unusual ones frequent enough to
    learn."""
    sensor = rng.choice(list(SENSORS))
    nominal, spread, _ = SENSORS[sensor]
    mean = nominal + rng.gauss(0, spread * 0.3)
    kind = rng.random()
    value, rate, stuck, gap = mean + rng.gauss(0, spread), rng.gauss(0, 0.5), \
        False, rng.randrange(1, 10)
    if rng.random() < 0.2:
        # A short dropout (an edge restarting, a buffer that dropped some
        # readings): well below the runbook's minute, not a fault.
        gap = rng.randrange(10, 60)
    if kind < 0.15:  # A spike.
        value = mean + rng.uniform(2, 7) * spread
        rate = rng.uniform(-1, 4)
    elif kind < 0.30:  # A drift.
        mean = nominal + rng.choice([-1, 1]) * rng.uniform(1, 4) * spread
        value = mean + rng.gauss(0, spread * 0.5)
        rate = rng.gauss(0, 0.8)
    elif kind < 0.40:  # A trend, some fast; some back towards the mean.
        rate = rng.uniform(-4, 4)
        if rng.random() < 0.3:
            rate *= rng.uniform(3, 20)
        side = 1 if rate > 0 else -1
        if rng.random() < 0.3:
            side = -side
        value = mean + rng.uniform(0, 5) * spread * side
    elif kind < 0.48:  # Stuck.
        stuck, rate = True, 0.0
    elif kind < 0.56:  # A gap, half of them near the runbook's minute.
        gap = rng.randrange(45, 120) if rng.random() < 0.5 else \
            rng.randrange(120, 600)
    if sensor == "temperature" and rng.random() < 0.3:
        value = rng.uniform(75, 100)  # Near the alarms.
        rate = rng.uniform(-1, 4)
        if rng.random() < 0.3:
            rate *= rng.uniform(3, 20)
    z = (value - mean) / spread
    return {
        "device": "%s-%d" % (rng.choice(KINDS), rng.randrange(1, 100)),
        "sensor": sensor,
        "value": round(value, 1),
        "mean": round(mean, 1),
        "z": round(z, 1),
        "rate": round(rate, 1),
        "stuck": stuck,
        "gap": gap,
    }


def example(s):
    """The training text of a situation: the prompt, then the answer."""
    action, why = expert(s)
    return prompt(s), " %s\nwhy: %s\n" % (action, why)


def prompt(s):
    return "situation: %s\naction:" % render(s)


def dataset(seed, n):
    rng = random.Random(seed)
    return [situation(rng) for _ in range(n)]


def write_held_out(path, seed, n):
    """Tab-separated: the fields, the rendered text, the runbook's action
    and the rules' (for ai/model/evaluate)."""
    with open(path, "w") as f:
        for s in dataset(seed, n):
            f.write("\t".join([
                s["device"], s["sensor"], repr(s["value"]), repr(s["mean"]),
                repr(s["z"]), repr(s["rate"]), "1" if s["stuck"] else "0",
                str(s["gap"]), render(s), expert(s)[0], rules_baseline(s)
            ]) + "\n")


if __name__ == "__main__":
    import sys
    write_held_out(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
