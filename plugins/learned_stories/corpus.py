"""Authoring the story-lm training corpus (``plugins/data/stories/corpus.txt``).

Each corpus line is ``QUEST|TONE|KIND|text``: the control tokens the model is conditioned on, then the
line. ``QUEST`` is a quest kind or ``any``, ``TONE`` a tone or ``any``, ``KIND`` a line kind (see
:data:`KINDS`). Placeholders in braces are filled by the planner with grounded names:

=========== ==========================================================================================
``{giver}``  who gives the quest (every greeting names them: the player must know who asks)
``{place}``  where the quest happens (in a ``deliver`` quest: where the item goes; in ``explore``: the
             way in)
``{place2}`` the place to explore (``explore`` only)
``{item}``   the item to fetch or deliver; ``{foe}`` the foe to slay (an "it"); ``{other}`` the captive
             or the recipient (a "they")
``{reward}`` the reward (every ``promise`` and ``offer`` states it)
=========== ==========================================================================================

The corpus is written by a small grammar (:data:`GRAMMAR`: per cell ``(quest, tone, kind)`` a list of
templates whose ``(a|b|c)`` groups are alternatives, nested freely, and whose ``<macro>`` references expand
shared fragments) sampled with a fixed seed, plus whole hand-written lines (``handwritten.txt`` beside
it). The grammar's space is far larger than the sample, so the model learns to recombine fragments rather
than recall whole lines. ``python -m plugins.learned_stories.corpus`` rewrites ``corpus.txt``
deterministically (sorted, de-duplicated). :func:`fallback_line` is the first expansion of a cell: the
safe authored line story-lm falls back to when every sample of a line is rejected.
"""
from __future__ import annotations

import re

import numpy as np

from engine.resources import data_path

DATA = data_path("plugins", "data", "stories")

QUESTS = ("fetch", "slay", "rescue", "deliver", "explore")
TONES = ("earnest", "grim", "playful")
SEED = 15
PER_CELL = 150  # distinct lines sampled per (quest, tone, kind) cell (fewer when the cell's space is small)

# ------------------------------------------------------------------------------------------- fragments
MACROS = {
    # what the player must do, per quest kind (lower case; <Do.k> capitalises)
    "do.fetch": "(bring the {item} back|bring back the {item}|find the {item} for me|bring me the {item}|"
                "get the {item} out of {place})",
    "do.slay": "(kill {foe}|put an end to {foe}|rid us of {foe}|end {foe} for good|drive {foe} out of {place})",
    "do.rescue": "(bring {other} home|bring {other} back alive|get {other} out of {place}|find {other})",
    "do.deliver": "(get the {item} to {other}|see the {item} safely to {other}|put the {item} in {other}'s hands|"
                  "carry the {item} to {place})",
    "do.explore": "(map {place2}|tell me what lies in {place2}|come back with a map of {place2}|scout {place2})",
    # the same from the player's mouth
    "pdo.fetch": "(bring the {item} back|bring back the {item}|find the {item}|get the {item} out of {place})",
    "pdo.slay": "(kill {foe}|put an end to {foe}|rid you of {foe}|end {foe} for good|drive {foe} out of {place})",
    "pdo.rescue": "(bring {other} home|bring {other} back alive|get {other} out of {place}|find {other})",
    "pdo.deliver": "(get the {item} to {other}|see the {item} safely to {other}|put the {item} in {other}'s hands|"
                   "carry the {item} to {place})",
    "pdo.explore": "(map {place2}|find out what lies in {place2}|come back with a map of {place2}|scout {place2})",
    "psoon": "(today|tonight|at once|in no time|by morning|before dark|right away)",
    "e.tail": "(I need help.|I have nowhere else to turn.|Will you hear me out?|Please, listen.|I will be brief.|"
              "The matter is urgent.|I hoped someone would come.)",
    "g.tail": "(This will not be pleasant.|Listen well.|I will say this once.|Coin first, questions later.|"
              "Do not waste my time.|Sit, if you are staying.|You look like you can hold a blade.|"
              "I have a job, if you have the stomach.|Keep your hands where I can see them.|"
              "There is blood in this work.|Nobody else answered.|Drink, if you want. Then listen.)",
    "p.tail": "(Do you like adventures?|Got a minute? Got an hour?|Have I got a job for you.|Do not run off yet.|"
              "You will do nicely.|Fancy some excitement?|Have you eaten? Never mind, later.|"
              "I was hoping a hero would turn up.|You have the look of someone bored.|"
              "Let me tell you a secret.|Today is going to be fun.|Oh, you'll like this.)",
    "you": "(traveller|friend|stranger|good soul|wanderer)",
    # why it matters (said after the ask or the promise, half of the time)
    "why.fetch": "(It belonged to my mother.|The village needs it before winter.|Without it the well stays cursed.|"
                 "It was stolen on the night of the fire.|The priest says it keeps the dead asleep.|"
                 "I swore I would keep it safe.|My father made it with his own hands.|The council wants it back.)",
    "why.slay": "(Three farms burned last week.|The children no longer play outside.|The guards will not go near it.|"
                "It took the miller's dog last night.|Nobody sleeps while it lives.|The roads are empty because of it.|"
                "It killed my neighbour.|The harvest rots because of it.)",
    "why.rescue": "(They are all the family I have left.|They only went to gather herbs.|Their mother cries every night.|"
                  "Nobody else will go after them.|They still owe me a song.|They were always the brave one.|"
                  "The search party came back without them.|I should have stopped them.)",
    "why.deliver": "(They have waited all winter for it.|It cannot wait another day.|The roads are too dangerous for me.|"
                   "I gave my word it would arrive.|It is a gift, and a late one.|It may save their life.|"
                   "My legs are too old for the journey.|No one else can be trusted with it.)",
    "why.explore": "(Our maps stop at the old wall.|Strange lights were seen there.|The last scout never came back.|"
                   "The council wants to know what is there.|My grandfather spoke of it.|Something calls from there at night.|"
                   "No one alive has walked there.|The birds will not fly over it.)",
    "mood.earnest": "(The days have been hard.|I do not ask this lightly.|You have a kind face.|We are simple folk.|"
                    "I have not slept for days.|The lamps burn low here.)",
    "mood.grim": "(Times are bad.|I do not trust easily.|Blood has been spilled already.|Nobody here is innocent.|"
                 "The graves are filling up.|Hope is for fools.)",
    "mood.playful": "(Isn't this exciting?|I love a good quest.|Today smells like adventure.|I baked a pie for the occasion.|"
                    "I have been practising this speech.|The goat thinks you are splendid.)",
    "soon": "(before nightfall|at first light|without delay|as fast as you can|before the moon is full|quietly)",
    "e.hurry": "(Please hurry.|I will pray for you.|Be careful out there.|You are our only hope.|"
               "The whole village will thank you.)",
    "g.hurry": "(Do it quickly.|Nobody else is fool enough.|Tell no one.|Time is short.|Do not come back empty-handed.)",
    "p.hurry": "(It will be fun, promise!|What could go wrong?|I'd go myself, but, well.|Chop chop!|"
               "You'll be a legend.)",
}

G: dict[tuple[str, str, str], list[str]] = {}


def _add(quest: str, tone: str, kind: str, *templates: str) -> None:
    G.setdefault((quest, tone, kind), []).extend(templates)


# greetings: every one names the giver
_add("any", "earnest", "greet",
     "(Welcome|Well met|Good day|Thank the stars), <you>. (I am|My name is|They call me) {giver}. <e.tail>",
     "(I am|My name is) {giver}, and (I have been waiting for someone like you|I am glad you came|"
     "I need your help|I hoped you would come). <e.tail>",
     "{giver}, at your service. (Please, sit|Come closer|Come in from the cold), (I have a favour to ask|"
     "I need help|there is much to tell).",
     "(Oh, thank goodness|Bless you for stopping|Ah, a kind face). (I am|People call me) {giver}. <e.tail>",
     "(Forgive me|Pardon me), <you>. I am {giver}, and (I have been waiting all day|I have no one else to ask).")
_add("any", "grim", "greet",
     "(Sit down|Close the door|Keep your voice low|Another stranger|So you came|Took you long enough|"
     "Don't stand in the doorway|You're late). (I am|Name's|Call me) {giver}. <g.tail>",
     "{giver}. That is my name, and you (will remember it|will not forget it). <g.tail>",
     "(I am|Name's) {giver}. (I have buried three friends this month|Few come this way|I do not like strangers|"
     "I have little time), (so listen|so be quick|but you will do).",
     "(Look at me|Eyes on me), not the window. I am {giver}. <g.tail>",
     "You want work? (I am|Name's) {giver}, and I have (work|some) for you. <g.tail>")
_add("any", "playful", "greet",
     "(Well, well|Hello, hello|Ah, perfect timing|Look who wandered in|Oh good, someone with boots)! "
     "(I am|I'm|Call me) {giver}. <p.tail>",
     "{giver}, (at your service|pleased to meet you|that's me), (hero|friend|stranger)! <p.tail>",
     "(Hi|Hello there)! (I am|I'm) {giver}, and (you look like trouble|today is your lucky day|"
     "I have a job for you).",
     "A new face, how (thrilling|splendid|delightful|lovely)! (I'm|I am|They call me) {giver}. <p.tail>",
     "(Yoo-hoo|Over here|Psst), (you|hero|friend)! (I'm|It's me,|I am) {giver}! <p.tail>")

# the ask: what and where (explore: both places)
_add("fetch", "earnest", "ask",
     "(Someone took|Thieves stole|I lost) the {item}, and (it lies|it was last seen) (somewhere in|in) {place}. "
     "(Please bring it back to me.|Could you find it for me?|Would you fetch it for me?|I need it back.)",
     "(Please|I beg you,) (search|go to) {place} and (bring me|find|recover) the {item}. (It means the world to me.|"
     "My family needs it.|I cannot go myself.)",
     "The {item} (belongs to my family|was my mother's|kept our village safe). It (lies|is hidden) in {place} now. "
     "(Will you bring it home?|Please bring it back.|<e.hurry>)",
     "(Somewhere in|Deep in) {place} lies the {item}. (We need it back.|Without it we are lost.) <e.hurry>")
_add("fetch", "grim", "ask",
     "The {item} is in {place}. (Get it|Bring it to me|Fetch it), and (do not ask why|be quick about it). <g.hurry>",
     "(Men died for|Three thieves fought over|The dead still guard) the {item}. It (lies|waits) in {place}. "
     "(Bring it here.|Get it before someone else does.|Fetch it.)",
     "Go into {place}. Come back with the {item}, or (do not come back|do not come back at all).",
     "I need the {item} from {place}. (Nothing else matters.|<g.hurry>)")
_add("fetch", "playful", "ask",
     "I (may have|might have|definitely did not) (dropped|misplaced|lost) the {item} in {place}. "
     "(Fetch it, would you?|Be a dear and find it?|Could you go and get it?)",
     "(Treasure hunt!|Good news!) The prize is the {item}, and the map says {place}. (Off you go!|Fun, right?)",
     "The {item} is hiding in {place}, the (rascal|little rascal|sneak). (Go and get it!|Bring it back to me!) "
     "<p.hurry>",
     "Be a dear and bring me the {item} from {place}. <p.hurry>")
_add("slay", "earnest", "ask",
     "{foe} (has hurt too many of us|took my brother|burned our fields|frightens the children). "
     "(It hides|It lairs|It waits) in {place}. (Please stop it.|Will you face it?|Please end this.)",
     "(Please,|I beg you,) (stop|drive off|face) {foe} in {place}. (We cannot sleep while it lives.|"
     "Nobody else is brave enough.|<e.hurry>)",
     "We cannot sleep while {foe} (prowls|roams) {place}. (Will you face it?|Please help us.) <e.hurry>")
_add("slay", "grim", "ask",
     "{foe} (haunts|hunts in|feeds in) {place}. (Kill it.|Put it in the ground.|End it.) <g.hurry>",
     "Go to {place}. (Find|Hunt down) {foe}. (Kill it.|Do not let it speak to you.|"
     "Make it the last night it feeds.)",
     "Bring me proof that {foe} is dead. It (hides|sleeps) in {place}. <g.hurry>",
     "{foe} has killed too many. Find it in {place} and (finish it|end it). <g.hurry>")
_add("slay", "playful", "ask",
     "{foe} (keeps eating my chickens|insulted my cooking|has been rude to everyone). It lives in {place}. "
     "(Deal with it?|Teach it some manners!|Go and bop it on the nose!)",
     "(Fancy a fight?|Bored?) {foe} is waiting for you in {place}. <p.hurry>",
     "There is a small problem named {foe} in {place}. Small, as in (huge|enormous). <p.hurry>")
_add("rescue", "earnest", "ask",
     "{other} (went into|wandered into|was taken to) {place} and (never came back|has not returned). "
     "(Please find them.|Please bring them home.|I beg you, help them.)",
     "(My friend|My sister|My apprentice|My brother) {other} is (trapped|lost) in {place}. "
     "(Will you go?|Please bring them back safe.|<e.hurry>)",
     "Please bring {other} back from {place} before it is too late. <e.hurry>")
_add("rescue", "grim", "ask",
     "{other} is in {place}. (Alive, if we are lucky.|Get them out.|Bring them back.) <g.hurry>",
     "They dragged {other} into {place}. (Get them out.|Cut them loose.|Bring them back, whatever it costs.)",
     "{other} went to {place} three days ago. (Find what is left.|Find them.) <g.hurry>")
_add("rescue", "playful", "ask",
     "{other} got lost in {place} again. (Fetch them before supper?|Go rescue them!|Can you bring them back?)",
     "Guess who wandered into {place}? {other}, of course. (Go and get them!|Bring them home?) <p.hurry>",
     "{other} is stuck in {place}. Probably sulking. (Go rescue them!|Be a hero and fetch them!)")
_add("deliver", "earnest", "ask",
     "(Please take|Please carry) this {item} to {other} in {place}. (I trust you with it.|They need it badly.|"
     "It must arrive safely.)",
     "(Could you take|Could you carry) this {item} to {other} in {place}? (I trust you with it.|"
     "They need it badly.)",
     "{other} (waits|is waiting) in {place} for this {item}. (Will you carry it?|Please take it to them.) <e.hurry>")
_add("deliver", "grim", "ask",
     "Take the {item} to {other} in {place}. (Do not open it.|Give it to no one else.|Go now.) <g.hurry>",
     "If the {item} does not reach {other} in {place}, (we all pay|people will die). (Go.|Move.)",
     "Carry the {item} to {place}. Give it to {other} and no one else. <g.hurry>")
_add("deliver", "playful", "ask",
     "Special delivery! One {item} for {other} in {place}. (Off you go!|Chop chop!)",
     "{other} ordered this {item}. They live in {place}. (Be my courier?|Run it over, would you?) <p.hurry>",
     "Run this {item} over to {other} in {place}, there's a sport. <p.hurry>")
_add("explore", "earnest", "ask",
     "Nobody has mapped {place2} past {place}. (Will you go and see?|Please find out what is there.) <e.hurry>",
     "We need to know what lies in {place2}. (The way|The road) (starts at|runs through) {place}. "
     "(Will you go?|Please go and look.)",
     "Something stirs in {place2}, beyond {place}. (Please find out what.|Will you look?) <e.hurry>")
_add("explore", "grim", "ask",
     "Those who enter {place2} do not come back. Go through {place} and (find out why|see for yourself).",
     "Go past {place}. (Map|Scout) {place2}. (Try to live.|Count what waits there.|Report back.)",
     "The road through {place} leads to {place2}. Walk it. <g.hurry>")
_add("explore", "playful", "ask",
     "Ever wondered what is in {place2}? Me too! (Go through {place} and look.|Start at {place}.) <p.hurry>",
     "Past {place} there is {place2}, and nobody knows a thing about it. (Exciting!|Go and look!)",
     "I bet {place2} is full of secrets. (The way in is|Start at) {place}. <p.hurry>")

# the promise: the reward, said before the player chooses
for _q in QUESTS:
    _add(_q, "earnest", "promise",
         "<Do.%s> and {reward} (is yours|will be yours). (You have my word.|I promise.|It is all I have.)" % _q,
         "(I can offer|I will give you|I can pay) {reward} if you <do.%s>. (You have my word.|It is all I have.)" % _q,
         "If you <do.%s>, {reward} is yours. (I promise.|You have my word.)" % _q)
    _add(_q, "grim", "promise",
         "{reward} when it is done. (Not a coin more.|Take it or leave it.)",
         "<Do.%s> and you get {reward}. (Fail, and you get nothing.|That is the deal.)" % _q,
         "You <do.%s>, you get {reward}. (That is fair.|No haggling.)" % _q)
    _add(_q, "playful", "promise",
         "(There is|I have) {reward} in it for you! (Tempting, no?|Not bad, eh?)",
         "<Do.%s> and I'll hand over {reward}. (Deal?|Fun and profit!)" % _q,
         "(Oh, and|Also,) if you <do.%s>, you win {reward}! (Tempting, no?|Deal?)" % _q)

# the player's answers
for _q in QUESTS:
    _add(_q, "earnest", "accept",
         "(I will help you|You can count on me|I'll do it|I give you my word|I will not let you down|"
         "Rest easy), {giver}. (I'll|I will|I promise to|I mean to) <pdo.%s>( <psoon>|)." % _q,
         "(Of course.|Say no more.|Leave it to me.|It would be an honour.|How could I refuse?|I am ready.) "
         "(I will|I'll|Somehow I will) <pdo.%s>( <psoon>|)." % _q,
         "(I'll go to|I will set out for|I will head for|I'll make for) {place} (at once|today|tonight|"
         "in the morning|before the sun is up), {giver}.( You have my word.| Do not worry.| Have faith.|)")
    _add(_q, "grim", "accept",
         "(Fine|Very well|All right|I'll take it|Done). I'll <pdo.%s>( <psoon>|). (Have the pay ready.|"
         "Don't wait up.|Keep the door barred.|Count your coins.|Don't follow me.)" % _q,
         "(Consider it done.|Someone has to.|I've done worse.|Whatever it takes.|It's a job.) "
         "{place} (it is|then)(, {giver}|).",
         "I'll <pdo.%s>, {giver}. (Pay me when it is over.|Don't thank me yet.|Then we are square.|"
         "After that, we never met.)" % _q)
    _add(_q, "playful", "accept",
         "(Sounds like fun!|Adventure it is!|Why not?|Oh, I'd love to!|Count me in!|Ooh, yes please!|"
         "Try and stop me!) (I'll <pdo.%s>( <psoon>|).|Off to {place}!|{place}, here I come!|"
         "{place}, get ready for me!)" % _q,
         "(Say no more|Leave it to me|Consider it done|Easy as pie), {giver}! (I'll|I'm going to) "
         "<pdo.%s>( <psoon>|)(!|.)" % _q)
_add("any", "earnest", "haggle",
     "(What would I get for this|Is there a reward|How will you repay me|Forgive me, but is there payment|"
     "Is there anything in it for me|Could you spare something for my trouble), {giver}?",
     "I want to help, {giver}, but (I have mouths to feed|my purse is empty|my boots are worn through|"
     "I have debts of my own|the road costs money). (Is there payment?|Is there a reward?|"
     "Could you pay something?|What can you offer?)",
     "{place} (sounds dangerous|is a long way|is no small journey|is far from here). (Is there a reward?|"
     "What would I get for this?|Will I be paid for it?|What can you offer me?)")
_add("any", "grim", "haggle",
     "(What's in it for me|And the pay|Why should I risk my neck for this|How much|What does it pay|"
     "Who pays for the funeral if I die), {giver}?",
     "(Name a price|Talk money|Show me the coin|Open your purse), {giver}. (Heroes eat too.|"
     "I don't work for free.|Nobody bleeds for free.|Words don't fill a belly.) (What's the pay?|How much?)",
     "{place} (is not cheap|costs extra|will cost you|is a risk). (What's the pay?|Name a price.|"
     "How much are you offering?|What's it worth to you?)")
_add("any", "playful", "haggle",
     "(What's the prize|Do I get a shiny thing|And what do I win|Is there cake at the end|"
     "Do I get a medal|What's in the treasure chest), {giver}?",
     "(Before I say yes|Hold on|Wait a moment|One tiny question), {giver}, (what's in it for me|"
     "is there a prize|do I get paid|what do I win)?",
     "{place} sounds (thrilling|scary|a bit damp|like a lot of walking). (What do I win?|Is there a prize?|"
     "Will there be treasure?|What's the reward?)")
_add("any", "earnest", "decline",
     "(I'm sorry|Forgive me|I am truly sorry|Please understand), {giver}, (but I can't|I have other duties|"
     "not today|but I must refuse|but my answer is no|but I am not the one for this).",
     "(I'm sorry.|Forgive me.|I cannot do it.|I wish it were otherwise.) {place} is (too far for me|not for me|"
     "beyond my strength|more than I can face). (Good luck, though.|Ask the guards.|I hope someone braver comes.|"
     "I will pray someone helps you.)",
     "(My heart says yes|I wish I could|I would if I could|Another time I would), {giver}, but (I cannot|"
     "my road goes elsewhere|I am promised elsewhere|I have a family to think of|I am too tired).")
_add("any", "grim", "decline",
     "(Find someone else|Not my problem|No|Not a chance|Forget it|Not for that price), {giver}.",
     "{place}? (Not for all the gold in the world.|I'd rather live.|Not a chance.|I'm not a fool.|"
     "Find yourself another corpse.|I've buried enough friends.)",
     "(I have other business|Ask someone else|I don't do charity|My blade is spoken for), {giver}. (Good luck.|"
     "I'm done here.|Don't ask again.|We're finished.)")
_add("any", "playful", "decline",
     "(Maybe next time|Ask me tomorrow|I'd rather not|Not today, thank you|Oh, I couldn't), {giver}!",
     "{place}? (No thank you!|Sounds ghastly!|I just washed my boots!|Not in these shoes!|"
     "I'd sooner eat my hat!|My mother would never forgive me!)",
     "(Tempting|So tempting|What a lovely offer), {giver}, but (I'm booked for a nap|my boots say no|"
     "I have a pie in the oven|I promised the cat I'd stay in|my horoscope says no)!")
for _t in TONES:
    _add("any", _t, "lore_q",
         "(Tell me about|Tell me more about|Tell me what you know of|"
         "Say a little more about) {place}(, {giver}|).",
         "(What is|What do you know of|What happened in|Who built|What waits in|Who lives in|What became of|"
         "What do people say about) {place}(, {giver}|)?",
         "(Is {place} dangerous|Why is {place} feared|Have you been to {place}|How far is {place}|"
         "Does anyone go to {place}|Is there a safe way into {place}), {giver}?",
         "(Before I go|One more thing|Tell me first|Wait), (what is {place} like|what should I know about {place}|"
         "what will I find in {place}|who else has been to {place})?")

# the giver's other lines
_add("any", "earnest", "lore_a",
     "{place} (was a place of worship once|was built by my grandfather's people|was our pride before the war|"
     "sheltered travellers for a century)(. Now it is quiet.|. Treat it with respect.|. We miss what it was.|.)",
     "(My grandmother said|They say|Old songs say) {place} (was a place of worship once|was built by "
     "my grandfather's people|sheltered travellers for a century).")
_add("any", "grim", "lore_a",
     "{place} (was sealed after the plague|swallowed a whole patrol|remembers its dead|smells of old blood)"
     "(. Nobody goes there now.|. Do not linger.|. Bring a torch and a prayer.|.)",
     "(They say|I heard) {place} (was sealed after the plague|swallowed a whole patrol|remembers its dead). "
     "(Do not linger.|Nobody goes there now.)")
_add("any", "playful", "lore_a",
     "{place} (hums at night|eats lanterns|moves when no one looks|has the worst neighbours)"
     "(, or so they say.|. Probably.|. Isn't that marvellous?|.)",
     "(They say|Rumour has it) {place} (hums at night|eats lanterns|moves when no one looks). (Probably.|"
     "Isn't that marvellous?)")
_add("any", "earnest", "place",
     "({place} is quiet|{place} smells of candle wax|Light falls softly in {place}|{place} was cared for once)"
     "( and still.|, and it feels safe.| in the morning.|.)",
     "In {place} (someone still leaves flowers|the old lamps still burn|the birds still sing at dawn|"
     "there is an old well that never runs dry). (It is a gentle place.|Be kind to it.|Rest there if you are tired.|"
     "I used to go there as a child.)")
_add("any", "grim", "place",
     "({place} is cold|Water drips in {place}|Bones lie in {place}|{place} reeks of rot)"
     "( and silent.|, and something watches.| in the dark.|.)",
     "In {place} the walls are (scratched with tally marks|black with old smoke|wet with something dark|"
     "marked with old warnings). (Watch your step.|Stay close to the light.|Do not read them aloud.|"
     "Do not touch anything.)")
_add("any", "playful", "place",
     "({place} is full of echoes|{place} has a very rude door|Mushrooms grow in {place}|"
     "{place} is messier than my kitchen)(, how fun!|, and it giggles.|.| again.)",
     "In {place} (the stairs creak in tune|a statue wears a painted moustache|the frogs hold a choir|"
     "someone left a very large hat). (You'll love it.|Say hello!|Don't laugh too loud.|Try not to stare.)")
_add("any", "earnest", "offer",
     "(I can give you|All I have is|I can spare|I could give you|I will gladly give you) {reward}"
     "(. Is that enough?|, and my thanks.|.|. I know it is not much.|, and a warm meal.|, and a bed for the night.)",
     "{reward}, and (my thanks|the thanks of everyone here). (It is all I have.|I wish it were more.)",
     "Take {reward}. (You deserve it.|It is yours when you return.)",
     "(For you|For this|For your trouble|For your help), {reward}. (It is all I can spare.|I wish it were more.|"
     "Is that fair?|It is yours, with my blessing.|Please take it.)",
     "(I have put aside|I saved) {reward} for (whoever helps|this day|a hero like you).")
_add("any", "grim", "offer",
     "{reward}. (Not a coin more.|Take it or leave it.|That is what a life is worth these days.)",
     "You get {reward} when it is done. (Not before.|Not a coin more.)",
     "(The pay is|I pay|I'll pay|You'll get|It's worth) {reward}. (Half now is not an option.|Take it or leave it.|"
     "No more talk.|Don't bargain with me.|Nobody pays better.|Count yourself lucky.)",
     "{reward}, (counted out|paid) (when you return|when it is done). (That is all.|Not before.)")
# known flaws, kept until the next retraining (corpus.txt must stay the trained one): "How does this sound
# {reward}?" below, and "{other}at {place}" in beat_deliver (story_lm rejects a placeholder glued to a word)
_add("any", "playful", "offer",
     "How about {reward}? (Isn't that grand?|Tempting, no?)",
     "{reward}! (Isn't that grand?|And I'll name a goat after you.)",
     "I'll throw in {reward}. (Deal?|You drive a hard bargain!)",
     "(Ooh, let me think|Hmm). {reward}? (Yes, that will do!|Yes, why not!) (Deal?|Happy now?)",
     "(What about|Would you take|How does this sound|Will you settle for) {reward}? (I'll even wrap it.|"
     "Go on, say yes!|With a bow on top!|Plus a hug, free of charge!|I'll throw in a song!)")
_THANKS = {"fetch": "(Bring the {item} back safe.|Mind the {item}, it is old.|Start your search in {place}.|"
                     "(Look|Search) (first|carefully) in {place}.|Handle the {item} (gently|with care).|"
                     "The {item} (is small|is easy to miss|may be buried), so look (closely|well).|"
                     "(Keep|Carry) the {item} close on the way back.)",
           "slay": "(Aim for the heart of {foe}.|Do not let {foe} speak to you.|Mind yourself in {place}.|"
                   "{foe} (is cunning|is faster than it looks|hates the light), (so be ready|remember that).|"
                   "(Strike|Hit) {foe} (hard|first) and do not (hesitate|look back).|"
                   "(Watch|Mind) the shadows (in|around) {place}.)",
           "rescue": "(Tell {other} I sent you.|Bring {other} back breathing.|Mind yourself in {place}.|"
                     "{other} (will be frightened|may be hurt), so (be gentle|go softly).|"
                     "(Search|Look) every corner of {place} for {other}.|"
                     "(Give|Tell) {other} my (love|greetings) when you find them.)",
           "deliver": "({other} will be so glad.|Keep the {item} dry.|{place} is not far.|"
                      "(Give|Hand) the {item} to {other} and (no one else|nobody else).|"
                      "The road to {place} (is long|winds a lot), so (pace yourself|start early).|"
                      "{other} (will know|will recognise) the {item} (at once|when they see it).)",
           "explore": "(Draw everything you see in {place2}.|Start at {place}.|Come back from {place2}.|"
                      "(Count|Mark|Note) every (door|path|stair) in {place2}.|"
                      "The way (in|through) is {place}, (remember that|do not forget).|"
                      "(Write|Sketch) down (all|everything) you (find|see) in {place2}.)"}
for _q in QUESTS:
    _add(_q, "earnest", "thanks", "(Bless you.|Thank you, truly.|I knew you would help.|Oh, thank you.|"
         "You are very kind.|I am so grateful.|My heart is lighter already.) " + _THANKS[_q] +
         "( Go carefully.| I will wait for you here.| I will keep a candle lit for you.| May the road be kind.|"
         " Come back to us safely.|)")
    _add(_q, "grim", "thanks", "(Good.|Don't die.|Come back alive.|Smart choice.|Then we have a deal.|"
         "So be it.|Fine.) " + _THANKS[_q] + "( Do not fail me.| Trust nobody out there.| Keep your blade sharp.|"
         " Dawn comes early.|)")
    _add(_q, "playful", "thanks", "(Splendid!|Wonderful!|Hooray!|Marvellous!|Oh, goody!|Yes, yes, yes!|"
         "I knew you'd say yes!) " + _THANKS[_q] +
         "( Try not to get eaten.| Don't lose a boot.| Bring me back a story!| Wave if you pass my window!|"
         " I'll have the kettle on.|)")
_add("any", "earnest", "bye",
     "(Then may the roads be kind to you|I understand|I will find another way|No one can blame you|"
     "Thank you for listening, at least|It was kind of you to hear me), <you>.( I will ask someone else.|"
     " Perhaps another day.| Go in peace.|)",
     "(Then I will keep waiting|I will wait|I will sit here and wait|I will pray) for someone (brave|braver|kind). "
     "{place} (can wait a little longer|will still be there tomorrow|has waited this long).",
     "(I see|So be it|Very well|I understand). (Go safely, then|Walk in peace|Take care on the road|"
     "Keep warm out there), <you>. (I will ask someone else.|I will manage somehow.|We will find a way.|"
     "Perhaps we will meet again.)")
_add("any", "grim", "bye",
     "(Then get out of my sight|Coward. Go|Fine. Leave|Then we are done|Go on, then|Waste of my time)"
     "(.|, and do not come back.|, and keep your mouth shut.|, before I change my mind.)",
     "Then go. {place} will take (someone else instead|a braver fool|its dead without you).",
     "(I thought as much|Figures|Typical|Should have known). (Another coward|Another empty promise|"
     "Another pair of soft hands|One more useless sword). (Get out.|Go.|Leave.|Out.)")
_add("any", "playful", "bye",
     "(Your loss|Suit yourself|Pity|Oh, pooh|Well, drat)! (Bye now.|You'd have loved it.|"
     "More adventure for the next hero!|Don't come crying to me later!|I'll tell everyone you said no!)",
     "Your loss, (friend|hero|slowpoke)! {place} was going to be (such fun|the best day ever|"
     "full of surprises).",
     "(Oh well|Fine, fine|Never mind|Ah, well)! (I'll ask the goat|I'll find another hero|More fun for me|"
     "I'll ask the baker|I'll go myself, in a week or so). (Bye now!|Toodle-oo!|Cheerio!|Off you pop!)")
_add("any", "earnest", "item",
     "The {item} (is warm to the touch|was made with love|bears a name worn smooth by a thumb).",
     "(Old hands kept|Someone kept) the {item} (clean|safe) for (years|a lifetime).",
     "(My father|My grandmother|My old teacher|A kind stranger) (carried|treasured|mended|looked after) the {item} "
     "(for years|all their life|through hard times|until the very end).",
     "The {item} (was a gift|was given to us|came to us) (long ago|in a better year|when I was small)"
     "(, and we have kept it since|, and it means the world to us|).")
_add("any", "grim", "item",
     "The {item} (is stained and cold|has a crack that weeps|is heavier than it looks).",
     "Nobody who held the {item} (lived long|slept well).",
     "The {item} (smells of smoke|has seen too many wars|was taken from a grave|has a dark stain on it|"
     "was paid for in blood)(. Handle it with care.|. Do not admire it.|.)",
     "(Men have killed|People have died|Thieves have bled) for the {item}(, more than once| before|). "
     "(Remember that.|Do not be next.|Keep it hidden.)")
_add("any", "playful", "item",
     "The {item} (is shinier than it has any right to be|hums a tune|looks smug, somehow|squeaks when you hold it).",
     "(Careful|Mind you|Fair warning|Just so you know), the {item} (bites|sneezes|gets jealous|sings in the bath|"
     "hates Tuesdays)( sometimes|, a little|, but only on weekends|).",
     "The {item} (is my favourite thing|is terribly important|is the best thing ever made)(, after cake|, honestly|"
     ", don't tell the cat|)(!|.)")

# titles (title-cased by the generator) and beats
_add("fetch", "any", "title", "The (Lost|Stolen|Hidden|Cursed|Forgotten) {item}", "The {item} of {place}",
     "What Lies in {place}", "(A|The) (Hunt|Search) for the {item}", "Return of the {item}")
_add("slay", "any", "title", "The Hunt for {foe}", "{foe} Must Fall", "(Blood|Death|Fire) in {place}",
     "The End of {foe}", "Teeth in {place}")
_add("rescue", "any", "title", "Lost in {place}", "The Captive of {place}", "Bring {other} Home", "Out of {place}",
     "The Search for {other}")
_add("deliver", "any", "title", "A Parcel for {other}", "The Road to {place}", "The {item} Run",
     "(Word|A Gift) for {other}")
_add("explore", "any", "title", "Beyond {place}", "(Secrets|The Edge) of {place2}", "Into {place2}",
     "The Road to {place2}")
_add("any", "any", "beat_talk", "(Hear out|Speak with|Listen to|Meet|Talk to) {giver}( in the square| by the fire| at the inn|).",
     "Find {giver} and (talk|listen).", "Ask {giver} (what is wrong|what they need|for the whole story).")
_add("any", "any", "beat_goto", "(Travel|Go|Make your way|Walk|Hurry) to {place}( <soon>|).",
     "(Head for|Reach|Enter) {place}( <soon>|).", "Find the way (to|into) {place}.")
_add("any", "any", "beat_fetch", "(Find|Take|Recover) the {item} (in|from) {place}.",
     "(Recover|Pick up|Get|Claim|Find) the {item}( <soon>|).", "(Search|Comb) {place} for the {item}.")
_add("any", "any", "beat_defeat", "(Defeat|Slay|Beat|Fight|Hunt down) {foe} in {place}.",
     "(Defeat|Fight|Kill|Slay) {foe}( <soon>|).", "(Put an end to|Make an end of) {foe}( in {place}|).")
_add("any", "any", "beat_escort", "(Bring|Take|Walk) {other} home( <soon>|).",
     "(Lead|Guide) {other} (to safety|out of {place}|home).", "(Escort|Bring) {other} back( <soon>|).",
     "Get {other} out (alive|of {place}).")
_add("any", "any", "beat_deliver", "(Hand|Give|Deliver|Bring) the {item} to {other}( <soon>|( in|at) {place}|).",
     "Put the {item} in the hands of {other}.", "(Find|Meet) {other} and (hand over|deliver) the {item}.")
_add("any", "any", "beat_explore", "(Explore|Map|Scout|Chart) {place}( <soon>|( from end to end| room by room)).",
     "Search every corner of {place}.", "(Look around|Walk through) {place}( and take notes|).")
_add("any", "any", "beat_return", "(Return|Go back|Come back|Hurry back) to {giver}( <soon>|).",
     "(Report to|Check in with) {giver}.", "Tell {giver} (it is done|the news).",
     "(Return|Go back) to {giver} for {reward}.", "Collect {reward} from {giver}.")

KINDS = tuple(dict.fromkeys(k for _, _, k in G))

#: optional sentences around a line, by speaker and tone (each added with probability WRAP_P): more ways to
#: say the same thing, so the model learns to recombine
GIVER_KINDS = {"ask", "promise", "thanks", "lore_a", "place", "offer", "item", "bye"}
PLAYER_KINDS = {"accept", "decline", "haggle", "lore_q"}
WRAP_P = 0.4
MOTIVE_P = 0.5    # an ask or a promise says why it matters
MOOD_P = 0.4      # a greeting, a farewell, lore or an offer says how the giver feels
NO_OPEN = {"thanks", "bye", "offer"}
NO_CLOSE = {"lore_q", "haggle"}
OPEN = {("giver", "earnest"): ("Please, listen.", "I will not lie to you.", "It pains me to ask.",
                               "Forgive me for asking.", "Here is the truth of it.", "I have no one else.",
                               "Hear me out.", "I will be honest.", "Let me explain.", "Bear with me.",
                               "This is hard to say.", "Thank you for staying."),
        ("giver", "grim"): ("Listen.", "Here it is.", "No lies between us.", "Plain words, then.",
                            "I will not dress it up.", "Hear me.", "Pay attention.", "Look at me.", "So.",
                            "Straight to it.", "No time to waste.", "Mark this."),
        ("giver", "playful"): ("Right!", "Ooh, this is good.", "Now then!", "Guess what?", "Here's the fun part.",
                               "Ready?", "Oh, oh, listen!", "Drumroll, please!", "Okay, okay!", "Picture this!",
                               "Brace yourself!", "You'll love this."),
        ("player", "earnest"): ("Alright.", "I understand.", "Very well.", "I see.", "Of course.", "Yes.",
                                "I hear you.", "Thank you for telling me.", "I have heard enough.", "That is a lot.",
                                "I have thought it over.", "Let me be honest.", "Give me a moment.", "Forgive me."),
        ("player", "grim"): ("Hm.", "Right.", "Listen.", "Fine.", "So.", "Look.", "Enough.", "Spare me the tears.",
                             "I've heard worse.", "Let me think.", "Plain words, then.", "Save the speech.",
                             "Don't push me.", "Let's be clear."),
        ("player", "playful"): ("Ooh!", "Ha!", "Well!", "Hmm!", "Oh my!", "Wow!", "Golly!", "Ooh, goodie!",
                                "Oh, you charmer!", "Hold that thought!", "Now we're talking!", "Well, well!",
                                "How exciting!", "Oh dear, oh dear!")}
CLOSE = {("giver", "earnest"): ("Thank you for listening.", "I know it is much to ask.", "You are kind to hear me.",
                                "May the light keep you.", "I will not forget this.", "I am grateful.",
                                "Go gently.", "Stay safe.", "I will pray for you tonight.", "You are a blessing."),
         ("giver", "grim"): ("That is all.", "No more questions.", "Remember that.", "Do not make me repeat it.",
                             "Now go.", "Keep your blade close.", "Trust no one.", "Dawn comes early.",
                             "Do not be a hero.", "Move."),
         ("giver", "playful"): ("Exciting, no?", "Isn't it thrilling?", "Fun, fun, fun!", "Wink wink.",
                                "Don't tell anyone!", "Toodle-oo!", "Off you trot!", "What a day!",
                                "I'm so proud of you already!", "Bring me a souvenir!"),
         ("player", "earnest"): ("Truly.", "I mean it.", "Honestly.", "You have my word.", "Rest easy.",
                                 "I hope you understand.", "I am sorry it must be so.", "Take care of yourself.",
                                 "I wish you well.", "Do not lose hope."),
         ("player", "grim"): ("That's all.", "Simple.", "We're done.", "No promises.", "Enough talk.",
                              "Don't thank me.", "Nothing personal.", "Take it or leave it.", "I won't say it twice.",
                              "Keep your hopes low."),
         ("player", "playful"): ("Tee-hee.", "Ha!", "Obviously!", "Easy peasy!", "What fun!", "Cheerio!",
                                 "Isn't life grand?", "Toodle-oo!", "Wish me luck!", "I'm terribly charming, I know.")}

# ------------------------------------------------------------------------------------------- expansion
_GROUP = re.compile(r"\(([^()]*)\)")
_MACRO = re.compile(r"<([A-Za-z.]+)>")


def _macros(text: str) -> str:
    """Inline ``<macro>`` references (``<Do.k>`` is ``<do.k>`` with a capital first letter: a marker)."""
    for _ in range(8):
        new = _MACRO.sub(lambda m: ("\x01" if m.group(1)[0].isupper() else "") + MACROS[m.group(1).lower()], text)
        if new == text:
            break
        text = new
    return text


def expand(template: str, rng: np.random.Generator | None) -> str:
    """One expansion (innermost groups first); ``rng=None`` takes every group's first option."""
    text = _macros(template)
    while True:
        new = _GROUP.sub(lambda m: m.group(1).split("|")[0 if rng is None else
                                                        int(rng.integers(m.group(1).count("|") + 1))], text, count=1)
        if new == text:
            break
        text = new
    text = re.sub(r"\x01(.)", lambda m: m.group(1).upper(), text)
    return re.sub(r"\s+", " ", text).strip()


def cell(quest: str, tone: str, kind: str) -> list[str] | None:
    """The templates for a line: the most specific cell (quest, tone) → (any, tone) → (quest, any) → any."""
    for key in ((quest, tone, kind), ("any", tone, kind), (quest, "any", kind), ("any", "any", kind)):
        if key in G:
            return G[key]
    return None


def fallback_line(kind: str, quest: str, tone: str) -> str:
    """The first expansion of a line's cell: a safe authored line."""
    templates = cell(quest, tone, kind)
    return expand(templates[0], None) if templates else "..."


def grammar_lines(seed: int = SEED, per_cell: int = PER_CELL) -> list[str]:
    rng = np.random.default_rng(seed)
    out: list[str] = []
    for (quest, tone, kind), templates in G.items():
        seen: set[str] = set()
        who = "giver" if kind in GIVER_KINDS else "player" if kind in PLAYER_KINDS else None
        for _ in range(per_cell * 6):
            if len(seen) >= per_cell:
                break
            text = expand(templates[int(rng.integers(len(templates)))], rng)
            if kind in ("ask", "promise") and quest in QUESTS and rng.random() < MOTIVE_P:
                text = f"{text} {expand(f'<why.{quest}>', rng)}"
            if kind in ("greet", "bye", "lore_a", "offer") and tone in TONES and rng.random() < MOOD_P:
                mood = expand(f"<mood.{tone}>", rng)
                text = f"{mood} {text}" if kind == "greet" else f"{text} {mood}"
            if who and tone in TONES:
                if rng.random() < WRAP_P and kind not in NO_OPEN:
                    pool = OPEN[who, tone]
                    text = f"{pool[int(rng.integers(len(pool)))]} {text}"
                if rng.random() < WRAP_P and kind not in NO_CLOSE:
                    pool = CLOSE[who, tone]
                    text = f"{text} {pool[int(rng.integers(len(pool)))]}"
            seen.add(text)
        out += [f"{quest}|{tone}|{kind}|{t}" for t in sorted(seen)]
    return out


def lines() -> list[str]:
    out = grammar_lines()
    hand = DATA / "handwritten.txt"
    if hand.is_file():
        out += [ln.strip() for ln in hand.read_text("utf-8").splitlines() if ln.strip() and not ln.startswith("#")]
    return sorted(set(out))


if __name__ == "__main__":  # pragma: no cover - authoring tool
    text = "\n".join(lines()) + "\n"
    (DATA / "corpus.txt").write_text(text, "utf-8")
    print(f"wrote {len(text.splitlines())} lines to {DATA / 'corpus.txt'}")
