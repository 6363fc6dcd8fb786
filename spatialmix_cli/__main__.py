"""``python -m spatialmix_cli ...`` (also what ``torchrun -m spatialmix_cli`` runs)."""

from .cli.app import main

if __name__ == "__main__":
    main()
