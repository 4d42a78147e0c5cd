"""Codes shown in words in the admin: a list filter whose choices are the words for a field's
stored values (the models keep their codes; the words live with each app's admin)."""

from django.contrib import admin


def words_filter(field: str, title, words: dict):
    """A list filter on `field` (`?<field>=<code>`) offering `words` ({code: words}) as choices."""

    class WordsFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request, model_admin):
            return list(words.items())

        def queryset(self, request, queryset):
            if self.value() in words:
                return queryset.filter(**{field: self.value()})
            return queryset

    WordsFilter.title = title
    return WordsFilter
