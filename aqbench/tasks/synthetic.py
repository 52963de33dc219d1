"""Word pools and helpers shared by the synthetic task generators.

Each generator in a task module turns a seed into lists of examples of that task's real shape. The tasks are
compositional (negation, contrast, which person a fact belongs to, context-dependent entity types), so a small
transformer learns them in about a minute yet needs its precision to keep them: 2-bit weights visibly hurt.
Some names are held out of training and appear only in evaluation, which forces the use of context.
"""

import random

FIRST_NAMES = (
    "anna tom maria james lena omar sofia peter nadia lucas ines victor clara hugo elena felix rosa ivan "
    "julia marco alice pablo emma samir laura diego nora kofi greta arjun mila oscar yuki leon hana raul "
    "irene boris"
).split()
LAST_NAMES = (
    "smith novak garcia muller rossi kowalski silva tanaka dubois jensen ortiz petrov khan larsen moreau "
    "fischer costa nakamura berg romano weber santos ivanova lindqvist haddad okafor meyer duarte"
).split()
CITIES = (
    "paris london rome berlin tokyo cairo lima oslo madrid vienna dublin lisbon prague warsaw athens "
    "nairobi seoul sydney toronto quito dakar hanoi riga bern"
).split()
COUNTRIES = (
    "france spain italy germany japan egypt peru norway brazil canada kenya india chile poland greece "
    "sweden mexico turkey"
).split()
ORG_HEADS = (
    "acme orion nordic atlas apex vertex summit pioneer global united meridian zenith harbor falcon cobalt "
    "granite beacon sterling"
).split()
ORG_TAILS = "corp bank group airlines motors energy telecom holdings".split()
NATIONALITIES = (
    "french german italian spanish japanese egyptian peruvian norwegian brazilian canadian kenyan indian "
    "chilean polish greek swedish"
).split()
EVENTS = ["world cup", "olympic games", "open championship", "grand prix", "winter games", "euro cup"]
JOBS = "doctor teacher pilot chef lawyer farmer nurse baker engineer painter writer dentist singer judge".split()
INSTRUMENTS = "piano violin drums guitar flute cello trumpet harp".split()
COLORS = "red blue green black white yellow silver brown".split()
VEHICLES = "car bike boat truck van scooter".split()
DAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
YEARS = [str(y) for y in range(1950, 2011)]


def split_pool(pool, seed, held_out=0.25):
    """Split a word pool into (seen in training, held out for evaluation only), deterministically."""
    words = sorted(pool)
    random.Random(seed).shuffle(words)
    k = max(1, int(round(len(words) * held_out)))
    return words[k:], words[:k]


def person(rng, firsts, lasts, full_prob=0.5):
    first = rng.choice(firsts)
    return f"{first} {rng.choice(lasts)}" if rng.random() < full_prob else first


def distinct(rng, pool, k):
    return rng.sample(list(pool), k)
