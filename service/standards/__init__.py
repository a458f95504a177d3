"""The standards publication: documents, versions, translations, diffs, and the open review of drafts.

Importing the package registers its periodic job (``standards.review.close``,
which announces reviews that ran out): every process that runs jobs imports it.
"""

from service.standards import reviews as _reviews  # noqa: F401
