"""Authoring the story-lm training corpus (``plugins/data/stories/corpus.txt``).

Each corpus line is ``QUEST|TONE|KIND|text``: the control tokens the model is conditioned on, then the
line. ``QUEST`` is a quest kind or ``any``, ``TONE`` a tone or ``any``, ``KIND`` a line kind (greet, ask,
accept, haggle, decline, lore_q, lore_a, offer, thanks, bye, title, beat_<beat kind>, place, item).
Placeholders in braces (``{place}``, ``{place2}``, ``{giver}``, ``{item}``, ``{foe}``, ``{other}``,
``{reward}``) are filled by the planner with grounded names. Lines without a ``|`` header (a user's own
text) train as ``any|any|line``.

The corpus is written by hand-authored fragments combined in every way (templated variation) plus whole
hand-written lines (``handwritten.txt`` beside it). Run ``python -m plugins.learned_stories.corpus`` to
rewrite ``corpus.txt``; the output is deterministic (sorted, de-duplicated).
"""
from __future__ import annotations

import itertools
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data" / "stories"

TONES = ("earnest", "grim", "playful")

GREET = {
    "earnest": (["Thank the stars you came", "Welcome, friend", "Oh, you came at last", "Bless you for stopping",
                 "Please, sit a moment", "You look like someone who keeps their word", "Traveller, a word",
                 "Forgive me, I have been waiting all day", "Hello there, good soul", "Ah, a kind face"],
                ["", " I need help.", " I have nowhere else to turn.", " Will you hear me out?",
                 " I hoped someone would come.", " Please, listen."]),
    "grim": (["Another stranger", "Sit down", "You again", "So you are the one they sent", "Keep your voice low",
              "Few come this way", "Close the door", "Look at me, not the window", "Do not waste my time",
              "I have buried three friends this month"],
             ["", " This will not be pleasant.", " Listen well.", " Most who hear this die.",
              " I will say it once.", " Coin first, questions later."]),
    "playful": (["Well, well, a hero", "Ah, perfect timing", "Lucky me, a volunteer", "Look who wandered in",
                 "Oh good, someone with boots", "Hello, hello", "A new face, how thrilling",
                 "You will do nicely", "Splendid, a visitor", "Ha, I knew today would be interesting"],
                ["", " Or near enough.", " Do you like adventures?", " Got a minute? Got an hour?",
                 " Have I got a job for you.", " Do not run off yet."]),
}

ASK = {
    "fetch": {
        "earnest": ["My {item} was taken to {place}. Please bring it back to me.",
                    "I lost the {item} somewhere in {place}. Could you find it?",
                    "The {item} belongs to my family. It lies in {place} now.",
                    "Someone hid the {item} in {place}. I need it back.",
                    "Please search {place} for the {item}. It means the world to me."],
        "grim": ["The {item} is in {place}. Get it, and do not ask why.",
                 "Thieves dragged the {item} into {place}. Fetch it before they sell it.",
                 "There is a {item} in {place}. Men died for it. Bring it here.",
                 "Go into {place}. Come back with the {item}, or do not come back.",
                 "I need the {item} from {place}. Nothing else matters."],
        "playful": ["I may have dropped my {item} in {place}. Fetch it, would you?",
                    "Somewhere in {place} there is a {item} with my name on it. Literally.",
                    "Be a dear and bring me the {item} from {place}.",
                    "The {item} is hiding in {place}, the rascal. Go get it!",
                    "Treasure hunt! The prize is the {item}. The map says {place}."],
    },
    "slay": {
        "earnest": ["{foe} has hurt too many of us. Please stop it in {place}.",
                    "We cannot sleep while {foe} prowls {place}. Will you face it?",
                    "{foe} took my brother. It lairs in {place}. End this.",
                    "Only you can stop {foe}. It waits in {place}.",
                    "Please, drive {foe} out of {place} for good."],
        "grim": ["{foe} haunts {place}. Kill it.",
                 "{foe} has killed too many. Find it in {place} and finish it.",
                 "Go to {place}. Put {foe} in the ground.",
                 "{foe} feeds in {place} every night. Make it the last night.",
                 "Bring me proof that {foe} is dead. It hides in {place}."],
        "playful": ["{foe} keeps eating my chickens. It lives in {place}. Deal with it?",
                    "There is a small problem named {foe} in {place}. Small, as in huge.",
                    "{foe} has been rude to everyone in {place}. Teach it manners!",
                    "Fancy a fight? {foe} is waiting in {place}.",
                    "Go and bop {foe} on the nose. Last seen in {place}."],
    },
    "rescue": {
        "earnest": ["{other} went into {place} and never returned. Please find them.",
                    "They took {other} to {place}. Bring them home safe.",
                    "{other} is lost somewhere in {place}. I beg you, help.",
                    "My friend {other} is trapped in {place}. Will you go?",
                    "Please bring {other} back from {place} before it is too late."],
        "grim": ["{other} is in {place}. Alive, if we are lucky.",
                 "They dragged {other} into {place}. Get them out.",
                 "{other} went to {place} three days ago. Find what is left.",
                 "Bring {other} back from {place}. I do not care what it costs.",
                 "Something holds {other} in {place}. Cut them loose."],
        "playful": ["{other} got lost in {place} again. Fetch them before supper?",
                    "Guess who wandered into {place}? {other}, of course.",
                    "{other} is stuck in {place}. Probably sulking. Go rescue them!",
                    "Somebody has to save {other} from {place}. Why not you?",
                    "{other} went exploring {place} and forgot the way home."],
    },
    "deliver": {
        "earnest": ["Please take this {item} to {other} in {place2}.",
                    "{other} waits in {place2} for this {item}. Will you carry it?",
                    "This {item} must reach {other} in {place2}. I trust you with it.",
                    "Bring the {item} to {other}. You will find them in {place2}.",
                    "Could you deliver this {item} to {other} at {place2}?"],
        "grim": ["Take the {item} to {other} in {place2}. Do not open it.",
                 "{other} needs this {item}. {place2}. Go now.",
                 "Carry the {item} to {place2}. Give it to {other} and no one else.",
                 "If the {item} does not reach {other} in {place2}, we all pay.",
                 "Get this {item} to {other} in {place2}. Quietly."],
        "playful": ["Special delivery! One {item} for {other} in {place2}.",
                    "{other} ordered a {item}. They live in {place2}. Off you go!",
                    "Be my courier? This {item} goes to {other} in {place2}.",
                    "Run this {item} over to {other} in {place2}, there's a sport.",
                    "{other} in {place2} will squeal when they see this {item}."],
    },
    "explore": {
        "earnest": ["Nobody has mapped {place2} past {place}. Will you go and see?",
                    "Something stirs beyond {place}. Please find out what.",
                    "We need to know what lies in {place2}. Go through {place}.",
                    "Chart {place2} for us. The way starts at {place}.",
                    "Explore {place2} and tell me what you find."],
        "grim": ["Those who enter {place2} do not come back. Find out why.",
                 "Go past {place}. Map {place2}. Try to live.",
                 "Something is wrong in {place2}. Look, then report.",
                 "The road through {place} leads to {place2}. Walk it.",
                 "Scout {place2}. Count what waits there."],
        "playful": ["Ever wondered what is in {place2}? Me too! Go look.",
                    "Past {place} there is {place2}. Nobody knows a thing about it. Exciting!",
                    "Draw me a map of {place2}. Bonus points for monsters.",
                    "Adventure awaits in {place2}, just through {place}.",
                    "I bet {place2} is full of secrets. Find them!"],
    },
}

ASK_TAIL = {"earnest": [" I will pay what I can.", " Please hurry.", " You are our only hope.",
                        " I will pray for you.", " Be careful out there.", " The whole village will thank you."],
            "grim": [" Do it quickly.", " Nobody else is fool enough.", " Do not come back empty-handed.",
                     " The pay is good.", " Tell no one.", " Time is short."],
            "playful": [" It will be fun, promise!", " What could go wrong?", " I'd go myself, but, well.",
                        " There might be cake after.", " Chop chop!", " You'll be a legend."]}

ACCEPT = {"earnest": ["I'll do it.", "You can count on me.", "I will help you.", "Consider it done.",
                      "I give you my word.", "Leave it to me."],
          "grim": ["Fine. I'm in.", "I'll handle it.", "Consider it done.", "Someone has to.",
                   "I'll go.", "Pay me when it is over."],
          "playful": ["Sounds like fun!", "Why not? I'm in.", "Adventure it is!", "Leave it to me!",
                      "Oh, I'd love to.", "Say no more!"]}
HAGGLE = {"earnest": ["What would I get for this?", "Is there a reward?", "How will you repay me?"],
          "grim": ["What's in it for me?", "And the pay?", "Why should I risk my neck?", "Name a price."],
          "playful": ["What's the prize?", "Do I get a shiny thing?", "And what do I win?"]}
DECLINE = {"earnest": ["I'm sorry, I can't.", "Not today, forgive me.", "I have other duties."],
           "grim": ["Find someone else.", "No.", "Not my problem.", "I have other business."],
           "playful": ["Maybe next time!", "I'd rather not.", "Ask me tomorrow!"]}
LORE_Q = ["Tell me about {place}.", "What do you know of {place}?", "What is {place} like?",
          "Why is {place} feared?", "Who built {place}?", "What happened in {place}?", "Is {place} dangerous?",
          "Where is {place}?", "What waits in {place}?", "Have you been to {place}?", "Tell me more about {place}.",
          "What should I know about {place}?"]
LORE_A = {
    "earnest": (["{place} was a place of worship once", "{place} was built by my grandfather's people",
                 "{place} was our pride before the war", "{place} sheltered travellers for a century"],
                [". Now it is quiet.", ". Treat it with respect.", ". We miss what it was.", "."]),
    "grim": (["{place} was sealed after the plague", "{place} swallowed a whole patrol",
              "{place} remembers its dead", "{place} smells of old blood"],
             [". Nobody goes there now.", ". Do not linger.", ". Bring a torch and a prayer.", "."]),
    "playful": (["{place} hums at night", "{place} eats lanterns", "{place} moves when no one looks",
                 "{place} has the worst neighbours"],
                [", or so they say.", ". Probably.", ". Isn't that marvellous?", "."]),
}
OFFER = {"earnest": ["I can give you {reward}.", "{reward}, and my thanks.", "All I have is {reward}.",
                     "Take {reward}. You deserve it."],
         "grim": ["{reward}. Not a coin more.", "You get {reward} when it is done.", "{reward}. Take it or leave."],
         "playful": ["How about {reward}?", "{reward}! Isn't that grand?", "I'll throw in {reward}."]}
THANKS = {"earnest": ["Bless you. Go carefully.", "I knew you would help.", "Thank you, truly.",
                      "May the road be kind to you.", "I will wait for you here."],
          "grim": ["Don't die. I'd have to find another.", "Good. Go.", "Come back alive.",
                   "Watch your back out there.", "Do not fail me."],
          "playful": ["Splendid! Try not to get eaten.", "Wonderful! Off you pop.", "Hooray! Bring snacks.",
                      "Marvellous. Don't lose a boot.", "Ha! I knew I liked you."]}
BYE = {"earnest": ["Then may the roads be kind to you.", "I understand. Farewell.", "I will find another way."],
       "grim": ["Then get out of my sight.", "Coward. Go.", "Fine. Leave."],
       "playful": ["Your loss! Bye now.", "Suit yourself!", "Pity. You'd have loved it."]}
TITLES = {"fetch": ["The Lost {item}", "The {item} of {place}", "What Lies in {place}", "The Hidden {item}"],
          "slay": ["The Hunt for {foe}", "{foe} Must Fall", "Blood in {place}", "The End of {foe}"],
          "rescue": ["Lost in {place}", "The Captive of {place}", "Bring {other} Home", "Out of {place}"],
          "deliver": ["A Parcel for {other}", "The Long Errand", "Word to {place2}", "The {item} Run"],
          "explore": ["Beyond {place}", "The Map's Edge", "Secrets of {place2}", "Into {place2}"]}
BEATS = {"talk": ["Hear out {giver}.", "Speak with {giver}.", "Listen to {giver}.", "Find {giver} and talk.",
                  "Ask {giver} what is wrong.", "Meet {giver}."],
         "goto": ["Travel to {place}.", "Go to {place}.", "Make your way to {place}.", "Head for {place}.",
                  "Reach {place}.", "Walk to {place}.", "Find the way to {place}."],
         "fetch": ["Find the {item} in {place}.", "Take the {item} from {place}.", "Recover the {item}.",
                   "Pick up the {item}.", "Search {place} for the {item}.", "Get the {item}."],
         "defeat": ["Defeat {foe}.", "Slay {foe} in {place}.", "Put an end to {foe}.", "Fight {foe}.",
                    "Kill {foe}.", "Beat {foe} in {place}."],
         "escort": ["Bring {other} home.", "Lead {other} to safety.", "Escort {other} back.", "Free {other}.",
                    "Get {other} out alive.", "Take {other} home."],
         "deliver": ["Hand the {item} to {other}.", "Give the {item} to {other}.", "Deliver the {item} to {other}.",
                     "Bring the {item} to {other}.", "Put the {item} in the hands of {other}."],
         "explore": ["Explore {place}.", "Map {place}.", "Search every corner of {place}.", "Scout {place}.",
                     "Look around {place}.", "Chart {place}."],
         "return": ["Return to {giver}.", "Go back to {giver}.", "Report to {giver}.", "Tell {giver} it is done.",
                    "Come back to {giver}.", "Return to {giver} for {reward}."]}
PLACE = {"earnest": (["{place} is quiet", "{place} smells of candle wax", "Light falls softly in {place}",
                      "{place} was cared for once"], [" and still.", ", and it feels safe.", " in the morning.", "."]),
         "grim": (["{place} is cold", "Water drips in {place}", "Bones lie in {place}", "{place} reeks of rot"],
                  [" and silent.", ", and something watches.", " in the dark.", "."]),
         "playful": (["{place} is full of echoes", "{place} has a very rude door", "Mushrooms grow in {place}",
                      "{place} is messier than my kitchen"], [", how fun!", ", and it giggles.", ".", " again."])}
ITEM = {"earnest": ["The {item} is warm to the touch.", "The {item} was made with love.",
                    "Old hands kept the {item} clean."],
        "grim": ["The {item} is stained and cold.", "The {item} has a crack that weeps.",
                 "Nobody who held the {item} lived long."],
        "playful": ["The {item} is shinier than it has any right to be.", "The {item} hums a tune.",
                    "The {item} looks smug, somehow."]}


PLAYER_TAIL = {"accept": ["", " Where do I start?", " Point the way.", " Expect me back soon."],
               "decline": ["", " Sorry.", " Good luck, though.", " Ask the guards."],
               "haggle": ["", " I don't work for free.", " Heroes eat too.", " Be honest."]}
THANKS_TAIL = ["", " Start at {place}.", " Mind yourself in {place}.", " Come back to me when it is done.",
               " {place} is not far."]


def lines() -> list[str]:
    out: list[str] = []
    for tone, (heads, tails) in GREET.items():
        out += [f"any|{tone}|greet|{h}.{t}".replace("..", ".") for h, t in itertools.product(heads, tails)]
    for quest, by_tone in ASK.items():
        for tone, asks in by_tone.items():
            out += [f"{quest}|{tone}|ask|{a}" for a in asks]
            # a greeting opener before the ask, for longer varied hooks
            heads = GREET[tone][0]
            out += [f"{quest}|{tone}|ask|{h}. {a}" for h, a in itertools.product(heads[:6], asks)]
            out += [f"{quest}|{tone}|ask|{a}{t}" for a, t in itertools.product(asks, ASK_TAIL[tone])]
    for kind, table in (("accept", ACCEPT), ("haggle", HAGGLE), ("decline", DECLINE), ("offer", OFFER),
                        ("thanks", THANKS), ("bye", BYE), ("item", ITEM)):
        for tone, items in table.items():
            out += [f"any|{tone}|{kind}|{x}" for x in items]
    for kind, tails in PLAYER_TAIL.items():
        table = {"accept": ACCEPT, "decline": DECLINE, "haggle": HAGGLE}[kind]
        for tone, items in table.items():
            out += [f"any|{tone}|{kind}|{x}{t}" for x, t in itertools.product(items, tails)]
    for tone, items in THANKS.items():
        out += [f"any|{tone}|thanks|{x}{t}" for x, t in itertools.product(items, THANKS_TAIL)]
    out += [f"any|any|lore_q|{x}" for x in LORE_Q]
    for kind, table in (("lore_a", LORE_A), ("place", PLACE)):
        for tone, (heads, tails) in table.items():
            out += [f"any|{tone}|{kind}|{h}{t}" for h, t in itertools.product(heads, tails)]
    for quest, titles in TITLES.items():
        out += [f"{quest}|any|title|{t}" for t in titles]
    for beat, texts in BEATS.items():
        out += [f"any|any|beat_{beat}|{t}" for t in texts]
    hand = DATA / "handwritten.txt"
    if hand.is_file():
        out += [ln.strip() for ln in hand.read_text("utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    return sorted(set(out))


if __name__ == "__main__":  # pragma: no cover - authoring tool
    text = "\n".join(lines()) + "\n"
    (DATA / "corpus.txt").write_text(text, "utf-8")
    print(f"wrote {len(text.splitlines())} lines to {DATA / 'corpus.txt'}")
