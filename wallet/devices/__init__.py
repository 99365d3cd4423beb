"""Device data on the tangle: readings signed by devices, gateways that verify them and anchor
Merkle batches of them, offline proofs from one reading up to the committee's signatures, and
sealed storage that only granted parties can read. Built on anyio (through the wallet client)
like the rest of the wallet library; the cores are sans-I/O."""
