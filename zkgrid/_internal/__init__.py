"""Private helpers shared by the parties (service, meter, verifier, witness) and the
command line, written once:

* :mod:`zkgrid._internal.files`: private files (0600, ``O_EXCL``, ``O_NOFOLLOW``,
  ``fsync``, atomic replace, permission checks and bounded reads of secrets);
* :mod:`zkgrid._internal.channels`: client channels (TLS, mutual TLS, insecure to a
  loopback target only), the one loopback parser, the development role metadata;
* :mod:`zkgrid._internal.rpc`: a failed gRPC call (status code and
  ``google.rpc.ErrorInfo`` reason) as a typed :class:`~zkgrid.errors.ZkgridError`.

They import only :mod:`zkgrid.errors` (``grpc`` inside the functions that need it), so
every floor may use them. Not an API: nothing outside this repository should import it.
"""
