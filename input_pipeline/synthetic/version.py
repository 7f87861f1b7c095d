"""What names a corpus's kind: the generator version and the voices.

Apart from corpus.py so that a training start, which only needs the names
of the default data's folders and the engines a config may pick, does not
import the generator (its motion model pulls in scipy.signal, about a
second of every start).
"""

GENERATOR_VERSION = "2"
# The speech: speech.py's source-filter voices, or eSpeak NG (espeak.py;
# the espeakng-loader wheel), whose phone timing the face then follows.
SPEECH_ENGINES = ("source_filter", "espeak")
DEFAULT_SPEECH = "source_filter"
