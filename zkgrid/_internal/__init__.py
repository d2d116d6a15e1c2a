"""Private helpers shared by the parties (service, meter, verifier, witness) and the
command line, written once: private files, client channels, RPC error translation.

Not an API: nothing outside this repository should import it.
"""
