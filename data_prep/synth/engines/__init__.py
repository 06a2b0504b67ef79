"""Text-to-speech engines with word and phone timings: espeak-ng and flite through their C
libraries (ctypes), festival through its Scheme interpreter."""
