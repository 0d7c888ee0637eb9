# -*- coding: utf-8 -*-
# Copyright: (c) 2026, palhm.palhm contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PALHM engine: Periodic Automatic Live Host Maintenance.

Standard library only (boto3 for the aws module, dnspython for the DNSSEC
check). Files import each other relatively so that the same package runs
inside AnsiballZ and standalone as the `palhm` command.
"""

__version__ = "1.0.0"
