"""A built-in, generic text sample for static int8 calibration and for the parity probe.

Static quantization needs activations that look like real inputs (query + passage, a few hundred
tokens), but must never see the data a user evaluates on. These paragraphs were written for
swaprank across everyday domains (science, medicine, software, law, finance, history...); none
comes from a benchmark. Calibration and the parity probe use disjoint halves of the topics, so the
probe checks the quantized model on text it was not calibrated on. Users who want calibration
on their own domain pass their own pairs (``swaprank export --calibration pairs.jsonl``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from swaprank.types import ConfigError

Pair = tuple[str, str]

# (query, passage) topics; the passage answers the query.
TOPICS: tuple[Pair, ...] = (
    ("how does regular exercise affect blood pressure",
     "Regular aerobic exercise lowers resting blood pressure in most adults. Trials that followed "
     "participants for several months found average reductions of four to eight millimetres of "
     "mercury in systolic pressure, comparable to a first-line drug. The effect appears within weeks, "
     "fades when training stops, and is largest in people who start with hypertension."),
    ("what causes antibiotic resistance in bacteria",
     "Bacteria become resistant to antibiotics through mutations and by acquiring resistance genes "
     "from other bacteria on plasmids. Every course of treatment kills susceptible cells and leaves "
     "the resistant ones to multiply, so overuse in medicine and agriculture speeds the spread. "
     "Hospitals track resistant strains and restrict broad-spectrum drugs to slow it down."),
    ("why do python programs use virtual environments",
     "A virtual environment gives each Python project its own interpreter prefix and site-packages "
     "directory. Dependencies installed for one project then cannot break another that needs a "
     "different version, and the exact set of packages can be written to a lock file and recreated "
     "on a build server or a colleague's laptop."),
    ("how do vaccines train the immune system",
     "A vaccine presents the immune system with a harmless form of an antigen: an inactivated virus, "
     "a protein subunit or messenger RNA that makes the cell produce the protein. B cells learn to "
     "produce matching antibodies and memory cells persist for years, so a later infection is met "
     "by a fast and strong response before the disease takes hold."),
    ("what is the difference between a stock and a bond",
     "A stock is a share of ownership in a company; its holder gains when profits and the share "
     "price rise and may lose everything if the company fails. A bond is a loan to a company or a "
     "government that pays fixed interest and returns the principal at maturity, so its income is "
     "more predictable but its upside is limited."),
    ("how does a refrigerator keep food cold",
     "A refrigerator moves heat from its interior to the kitchen with a vapour-compression cycle. "
     "A refrigerant evaporates in coils inside the cabinet, absorbing heat, then a compressor raises "
     "its pressure and temperature so it can release that heat through the condenser coils at the "
     "back before it expands and cools again."),
    ("what was the main cause of the fall of the western roman empire",
     "Historians point to several interacting causes of the fall of the Western Roman Empire in the "
     "fifth century: pressure from migrating Germanic peoples, civil wars between rival generals, "
     "a shrinking tax base, debased currency and the division of the empire, which left the West "
     "poorer and less able to pay the armies that defended its frontiers."),
    ("does sleep deprivation impair memory",
     "Sleep deprivation impairs the consolidation of new memories. During deep sleep the hippocampus "
     "replays the day's experiences and transfers them to the cortex; people kept awake after "
     "learning a list of words recall fewer of them days later, even after a night of recovery "
     "sleep, and attention lapses make it harder to learn anything new."),
    ("how do solar panels generate electricity",
     "Solar panels are made of photovoltaic cells, usually silicon doped to form a junction. When "
     "sunlight strikes the cell, photons free electrons that the junction's electric field pushes "
     "in one direction, producing a direct current. An inverter converts it to alternating current "
     "for the home or the grid."),
    ("what does a database index do",
     "A database index is a separate data structure, usually a B-tree, that keeps the values of one "
     "or more columns in sorted order with pointers to the rows. A query that filters or sorts on "
     "those columns can find matching rows in logarithmic time instead of scanning the whole table, "
     "at the cost of extra storage and slower writes."),
    ("why is the sky blue",
     "Sunlight contains every visible wavelength, and the molecules of the atmosphere scatter short "
     "wavelengths far more strongly than long ones, a process known as Rayleigh scattering. Blue "
     "light is therefore scattered across the whole sky and reaches the eye from every direction, "
     "while at sunset the long path through air leaves mostly red and orange."),
    ("what are the symptoms of iron deficiency anemia",
     "Iron deficiency anemia develops when the body lacks iron to make haemoglobin. Common symptoms "
     "are fatigue, pale skin, shortness of breath on exertion, headaches, cold hands and feet and "
     "brittle nails. Blood tests show small red cells and low ferritin, and treatment combines iron "
     "supplements with finding the cause of the loss."),
    ("how is a contract formed under common law",
     "Under common law a contract is formed when one party makes an offer, the other accepts it "
     "without changing its terms, and both exchange something of value, called consideration. The "
     "parties must intend to create legal relations and have the capacity to do so; some contracts, "
     "such as sales of land, must also be made in writing."),
    ("what does inflation do to savings",
     "Inflation reduces the purchasing power of money over time. Savings held in cash or in accounts "
     "paying less interest than the rate of inflation lose real value every year, which is why "
     "savers look to assets whose returns tend to outpace rising prices, such as equities or "
     "inflation-linked bonds."),
    ("how do plants make their food",
     "Plants make sugars by photosynthesis. Chlorophyll in the chloroplasts absorbs light energy, "
     "which splits water and releases oxygen; the energy captured is then used in the Calvin cycle to "
     "fix carbon dioxide from the air into glucose, which the plant burns for energy or stores as "
     "starch and builds into cellulose."),
    ("what is a black hole",
     "A black hole is a region of spacetime where gravity is so strong that nothing, not even light, "
     "can escape once it crosses the event horizon. Stellar black holes form when massive stars "
     "collapse at the end of their lives, while supermassive ones millions of times heavier than the "
     "Sun sit at the centres of most galaxies."),
    ("how does caching speed up a web application",
     "A cache keeps the results of expensive work, such as database queries or rendered pages, in "
     "fast memory close to where they are needed. Later requests for the same data are answered "
     "from the cache in microseconds instead of repeating the work, which cuts latency and load, "
     "provided stale entries are expired or invalidated when the data changes."),
    ("what increases the risk of type 2 diabetes",
     "The main risk factors for type 2 diabetes are excess body weight, especially around the waist, "
     "physical inactivity, age, a family history of the disease and certain ethnic backgrounds. "
     "Large trials showed that modest weight loss and regular activity cut the risk of progressing "
     "from prediabetes by more than half."),
    ("how do earthquakes happen",
     "Earthquakes happen when stress built up along a fault in the Earth's crust is released "
     "suddenly. The tectonic plates on either side are locked by friction while they keep moving, "
     "until the rock breaks and slips; the energy travels outward as seismic waves that shake the "
     "ground, strongest near the epicentre."),
    ("what is the role of the mitochondria",
     "Mitochondria are the organelles that produce most of a cell's energy. They oxidise sugars and "
     "fats in the citric acid cycle and use the resulting electron transport chain to pump protons, "
     "driving ATP synthase to make adenosine triphosphate. They also regulate programmed cell death "
     "and carry their own small circular genome."),
)

# Unrelated sentences that pad passages to the lengths real documents have.
FILLER: tuple[str, ...] = (
    "The committee met again in the spring and postponed its decision until more data were available.",
    "Measurements were repeated three times and the average was reported with its standard deviation.",
    "Local newspapers covered the story for several weeks before interest faded.",
    "The second edition added a chapter on methods and corrected several figures.",
    "Participants were recruited from outpatient clinics in three cities over two years.",
    "Maintenance costs rose steadily as the equipment aged and spare parts became scarce.",
    "The results were broadly consistent with earlier surveys, although the sample was smaller.",
    "Critics argued that the proposal was too expensive and would take a decade to complete.",
)


def _passage(topic: int, extra: int) -> str:
    """The topic's passage followed by ``extra`` filler sentences (lengthens it like real documents)."""
    text = TOPICS[topic][1]
    fill = " ".join(FILLER[(topic + k) % len(FILLER)] for k in range(extra))
    return f"{text} {fill}".strip()


def sample_pairs(part: str) -> list[Pair]:
    """Deterministic (query, passage) pairs: ``part="calibration"`` or ``"probe"`` (disjoint topics).

    Each query meets its own passage and other topics' passages, at several lengths, so positive
    and negative scores and short and long inputs are all represented: probe passages run from about
    60 to 350 tokens; calibration passages up to the 512-token limit (mean about 340), because real
    documents and long-document windows fill the model's length and the int8 activation ranges and
    SmoothQuant scales must be measured at those lengths (measured: benchmarks/RESULTS.md).
    """
    if part not in ("calibration", "probe"):
        raise ValueError(part)
    topics = [i for i in range(len(TOPICS)) if (i % 2 == 0) == (part == "calibration")]
    # (rank step, passage step, filler sentences at most + 1) per part
    rank_step, passage_step, span = (7, 11, 40) if part == "calibration" else (3, 5, 13)
    pairs: list[Pair] = []
    for rank, q in enumerate(topics):
        query = TOPICS[q][0]
        for step, d in enumerate(topics):
            extra = (rank * rank_step + step * passage_step) % span
            pairs.append((query, _passage(d, extra)))
    return pairs


def load_pairs(path: str | Path) -> list[Pair]:
    """User calibration pairs from JSON lines: ``{"query": ..., "text": ...}`` per line."""
    pairs: list[Pair] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read calibration pairs {path}: {exc}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            query, text = record["query"], record["text"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"calibration pairs {path} line {number}: expected {{\"query\": ..., \"text\": ...}} ({exc})"
            ) from None
        if not isinstance(query, str) or not isinstance(text, str) or not query.strip() or not text.strip():
            raise ConfigError(f"calibration pairs {path} line {number}: query and text must be non-empty strings")
        pairs.append((query, text))
    if not pairs:
        raise ConfigError(f"calibration pairs {path} holds no pairs")
    return pairs


def digest_pairs(pairs: Sequence[Pair]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(list(pairs)).encode()).hexdigest()
